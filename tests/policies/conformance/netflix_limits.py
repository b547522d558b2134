"""A line-by-line transcription of Netflix concurrency-limits, the reference for ``test_netflix_limits.py``.

Source: github.com/Netflix/concurrency-limits at 78a74b9878d38c4c048b0304ce12a162ab7b7222
(2026-01-12), ``concurrency-limits-core/src/main/java/com/netflix/concurrency/limits/``.
Each class keeps its Java shape (immutable sample windows, ``AbstractLimit.setLimit`` with
listeners, ``SimpleLimiter``'s adjustable semaphore of permits), so the simres
implementation, which keeps in-flight counts instead of permits, is checked against an
independent structure. ``mutant`` flips one inequality per class, so the comparison can be
shown to catch a one-character change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

LONG_MAX = 2**63 - 1


def java_int(x: float) -> int:
    """``(int) x`` for a double: truncation toward zero."""
    return int(x)


class Log10RootIntFunction:
    """``limit/functions/Log10RootIntFunction.java``."""

    # (int) Math.log10(0) is (int) -Infinity = Integer.MIN_VALUE, so lookup[0] = max(1, MIN_VALUE) = 1
    lookup: ClassVar[list[int]] = [max(1, java_int(math.log10(i))) if i > 0 else 1 for i in range(1000)]

    @classmethod
    def apply(cls, t: int) -> int:
        return cls.lookup[t] if t < 1000 else java_int(math.log10(t))


class AbstractLimit:
    """``limit/AbstractLimit.java``: ``onSample`` sets the limit from ``_update``; listeners on change."""

    def __init__(self, initial: int) -> None:
        self.limit = initial
        self.listeners: list[Callable[[int], None]] = []

    def onSample(self, startTime: int, rtt: int, inflight: int, didDrop: bool) -> None:
        self.setLimit(self._update(startTime, rtt, inflight, didDrop))

    def _update(self, startTime: int, rtt: int, inflight: int, didDrop: bool) -> int:
        raise NotImplementedError

    def getLimit(self) -> int:
        return self.limit

    def setLimit(self, newLimit: int) -> None:
        if newLimit != self.limit:
            self.limit = newLimit
            for listener in self.listeners:
                listener(newLimit)

    def notifyOnChange(self, consumer: Callable[[int], None]) -> None:
        self.listeners.append(consumer)


class AIMDLimit(AbstractLimit):
    """``limit/AIMDLimit.java``."""

    def __init__(self, initial: int = 20, minLimit: int = 20, maxLimit: int = 200,
                 backoffRatio: float = 0.9, timeout: int = 5 * 10**9, mutant: bool = False) -> None:
        super().__init__(initial)
        self.backoffRatio, self.timeout = backoffRatio, timeout
        self.minLimit, self.maxLimit, self.mutant = minLimit, maxLimit, mutant

    def _update(self, startTime: int, rtt: int, inflight: int, didDrop: bool) -> int:
        currentLimit = self.getLimit()
        if didDrop or rtt > self.timeout:
            currentLimit = java_int(currentLimit * self.backoffRatio)
        elif (inflight * 2 > currentLimit) if self.mutant else (inflight * 2 >= currentLimit):
            currentLimit = currentLimit + 1
        return min(self.maxLimit, max(self.minLimit, currentLimit))


class VegasLimit(AbstractLimit):
    """``limit/VegasLimit.java`` with the builder's default alpha/beta/threshold/increase/decrease."""

    def __init__(self, random: Callable[[], float], initial: int = 20, maxConcurrency: int = 1000,
                 smoothing: float = 1.0, probeMultiplier: int = 30, mutant: bool = False) -> None:
        super().__init__(initial)
        self.estimatedLimit = float(initial)
        self.rtt_noload = 0
        self.maxLimit = maxConcurrency
        self.smoothing = smoothing
        self.probeMultiplier = probeMultiplier
        self.probeCount = 0
        self.random = random
        self.mutant = mutant
        log10 = Log10RootIntFunction.apply
        self.alphaFunc = lambda limit: 3 * log10(limit)
        self.betaFunc = lambda limit: 6 * log10(limit)
        self.thresholdFunc = log10
        self.increaseFunc = lambda limit: limit + log10(java_int(limit))
        self.decreaseFunc = lambda limit: limit - log10(java_int(limit))
        self.resetProbeJitter()

    def resetProbeJitter(self) -> None:
        # ThreadLocalRandom.current().nextDouble(0.5, 1): origin + (bound - origin) * r
        self.probeJitter = 0.5 + (1 - 0.5) * self.random()

    def shouldProbe(self) -> bool:
        return self.probeJitter * self.probeMultiplier * self.estimatedLimit <= self.probeCount

    def _update(self, startTime: int, rtt: int, inflight: int, didDrop: bool) -> int:
        if rtt <= 0:
            raise ValueError("rtt must be >0 but got " + str(rtt))
        self.probeCount += 1
        if self.shouldProbe():
            self.resetProbeJitter()
            self.probeCount = 0
            self.rtt_noload = rtt
            return java_int(self.estimatedLimit)
        rtt_noload = self.rtt_noload
        if rtt_noload == 0 or rtt < rtt_noload:
            self.rtt_noload = rtt
            return java_int(self.estimatedLimit)
        return self.updateEstimatedLimit(rtt, rtt_noload, inflight, didDrop)

    def updateEstimatedLimit(self, rtt: int, rtt_noload: int, inflight: int, didDrop: bool) -> int:
        estimatedLimit = self.estimatedLimit
        queueSize = java_int(math.ceil(estimatedLimit * (1 - rtt_noload / rtt)))
        if didDrop:
            newLimit = self.decreaseFunc(estimatedLimit)
        elif inflight * 2 < estimatedLimit:
            return java_int(estimatedLimit)
        else:
            alpha = self.alphaFunc(java_int(estimatedLimit))
            beta = self.betaFunc(java_int(estimatedLimit))
            threshold = self.thresholdFunc(java_int(estimatedLimit))
            if (queueSize < threshold) if self.mutant else (queueSize <= threshold):
                newLimit = estimatedLimit + beta
            elif queueSize < alpha:
                newLimit = self.increaseFunc(estimatedLimit)
            elif queueSize > beta:
                newLimit = self.decreaseFunc(estimatedLimit)
            else:
                return java_int(estimatedLimit)
        newLimit = max(1, min(self.maxLimit, newLimit))
        newLimit = (1 - self.smoothing) * estimatedLimit + self.smoothing * newLimit
        self.estimatedLimit = newLimit
        return java_int(newLimit)


class ExpAvgMeasurement:
    """``limit/measurement/ExpAvgMeasurement.java``."""

    def __init__(self, window: int, warmupWindow: int) -> None:
        self.value, self.sum, self.count = 0.0, 0.0, 0
        self.window, self.warmupWindow = window, warmupWindow

    def add(self, sample: float) -> float:
        if self.count < self.warmupWindow:
            self.count += 1
            self.sum += float(sample)
            self.value = self.sum / self.count
        else:
            factor = 2.0 / (self.window + 1)
            self.value = self.value * (1 - factor) + float(sample) * factor
        return self.value

    def update(self, operation: Callable[[float], float]) -> None:
        self.value = float(operation(self.value))


class Gradient2Limit(AbstractLimit):
    """``limit/Gradient2Limit.java`` with a constant ``queueSize``."""

    def __init__(self, initial: int = 20, minLimit: int = 20, maxConcurrency: int = 200,
                 smoothing: float = 0.2, queueSize: int = 4, longWindow: int = 600,
                 rttTolerance: float = 1.5, mutant: bool = False) -> None:
        super().__init__(initial)
        self.estimatedLimit = float(initial)
        self.maxLimit, self.minLimit = maxConcurrency, minLimit
        self.queueSize, self.smoothing, self.tolerance = queueSize, smoothing, rttTolerance
        self.lastRtt = 0
        self.longRtt = ExpAvgMeasurement(longWindow, 10)
        self.mutant = mutant

    def _update(self, startTime: int, rtt: int, inflight: int, didDrop: bool) -> int:
        estimatedLimit = self.estimatedLimit
        queueSize = float(self.queueSize)
        self.lastRtt = rtt
        shortRtt = float(rtt)
        longRtt = self.longRtt.add(rtt)
        if longRtt / shortRtt > 2:
            self.longRtt.update(lambda current: current * 0.95)
        if (inflight <= estimatedLimit / 2) if self.mutant else (inflight < estimatedLimit / 2):
            return java_int(estimatedLimit)
        gradient = max(0.5, min(1.0, self.tolerance * longRtt / shortRtt))
        newLimit = estimatedLimit * gradient + queueSize
        newLimit = estimatedLimit * (1 - self.smoothing) + newLimit * self.smoothing
        newLimit = max(self.minLimit, min(self.maxLimit, newLimit))
        self.estimatedLimit = newLimit
        return java_int(newLimit)


class ImmutableAverageSampleWindow:
    """``limit/window/ImmutableAverageSampleWindow.java``."""

    def __init__(self, minRtt: int = LONG_MAX, sum: int = 0, maxInFlight: int = 0,
                 sampleCount: int = 0, didDrop: bool = False) -> None:
        self.minRtt, self.sum, self.maxInFlight = minRtt, sum, maxInFlight
        self.sampleCount, self._didDrop = sampleCount, didDrop

    def addSample(self, rtt: int, inflight: int, didDrop: bool) -> ImmutableAverageSampleWindow:
        return ImmutableAverageSampleWindow(min(rtt, self.minRtt), self.sum + rtt, max(inflight, self.maxInFlight),
                                            self.sampleCount + 1, self._didDrop or didDrop)

    def getCandidateRttNanos(self) -> int:
        return self.minRtt

    def getTrackedRttNanos(self) -> int:
        return 0 if self.sampleCount == 0 else self.sum // self.sampleCount  # long division, both >= 0

    def didDrop(self) -> bool:
        return self._didDrop


class ImmutablePercentileSampleWindow:
    """``limit/window/ImmutablePercentileSampleWindow.java`` (shares its observed-RTT array)."""

    def __init__(self, percentile: float, windowSize: int, minRtt: int = LONG_MAX, maxInFlight: int = 0,
                 didDrop: bool = False, observedRtts: list[int] | None = None, sampleCount: int = 0) -> None:
        self.percentile, self.minRtt, self.maxInFlight = percentile, minRtt, maxInFlight
        self._didDrop, self.sampleCount = didDrop, sampleCount
        self.observedRtts = observedRtts if observedRtts is not None else [0] * windowSize

    def addSample(self, rtt: int, inflight: int, didDrop: bool) -> ImmutablePercentileSampleWindow:
        if self.sampleCount >= len(self.observedRtts):
            return self
        self.observedRtts[self.sampleCount] = rtt
        return ImmutablePercentileSampleWindow(self.percentile, 0, min(self.minRtt, rtt),
                                               max(inflight, self.maxInFlight), self._didDrop or didDrop,
                                               self.observedRtts, self.sampleCount + 1)

    def getCandidateRttNanos(self) -> int:
        return self.minRtt

    def getTrackedRttNanos(self) -> int:
        if self.sampleCount == 0:
            return 0
        copy = sorted(self.observedRtts[: self.sampleCount])
        rttIndex = math.floor(self.sampleCount * self.percentile + 0.5)
        return copy[rttIndex - 1]

    def didDrop(self) -> bool:
        return self._didDrop


class WindowedLimit:
    """``limit/WindowedLimit.java`` (single-threaded: the lock is always obtained)."""

    def __init__(self, delegate: AbstractLimit, newWindow: Callable[[], object], minWindowTime: int = 10**9,
                 maxWindowTime: int = 10**9, windowSize: int = 10, minRttThreshold: int = 100_000) -> None:
        self.delegate, self.newWindow = delegate, newWindow
        self.minWindowTime, self.maxWindowTime = minWindowTime, maxWindowTime
        self.windowSize, self.minRttThreshold = windowSize, minRttThreshold
        self.nextUpdateTime = 0
        self.sample = newWindow()

    def notifyOnChange(self, consumer: Callable[[int], None]) -> None:
        self.delegate.notifyOnChange(consumer)

    def getLimit(self) -> int:
        return self.delegate.getLimit()

    def onSample(self, startTime: int, rtt: int, inflight: int, didDrop: bool) -> None:
        endTime = startTime + rtt
        if rtt < self.minRttThreshold:
            return
        self.sample = self.sample.addSample(rtt, inflight, didDrop)  # type: ignore[attr-defined]
        if endTime > self.nextUpdateTime:
            current = self.sample
            self.sample = self.newWindow()
            self.nextUpdateTime = endTime + min(max(current.getCandidateRttNanos() * 2, self.minWindowTime),  # type: ignore[attr-defined]
                                                self.maxWindowTime)
            if current.getCandidateRttNanos() < LONG_MAX and current.sampleCount >= self.windowSize:  # type: ignore[attr-defined]
                self.delegate.onSample(startTime, current.getTrackedRttNanos(), current.maxInFlight,  # type: ignore[attr-defined]
                                       current.didDrop())  # type: ignore[attr-defined]


class SimpleLimiter:
    """``limiter/SimpleLimiter.java`` over ``AbstractLimiter.java``: an adjustable semaphore of permits."""

    def __init__(self, limit: AbstractLimit | WindowedLimit, clock: Callable[[], int]) -> None:
        self.limitAlgorithm, self.clock = limit, clock
        self.limit = limit.getLimit()
        self.inFlight = 0
        self.permits = self.limit
        limit.notifyOnChange(self.onNewLimit)

    def onNewLimit(self, newLimit: int) -> None:
        oldLimit = self.limit
        self.limit = newLimit
        if newLimit > oldLimit:
            self.permits += newLimit - oldLimit  # semaphore.release(n)
        else:
            self.permits -= oldLimit - newLimit  # reducePermits(n): may go negative

    def acquire(self) -> Listener | None:
        if self.permits <= 0:  # !semaphore.tryAcquire()
            return None
        self.permits -= 1
        return Listener(self)


class Listener:
    """``AbstractLimiter.createListener`` wrapped by ``SimpleLimiter.Listener`` (release after the sample)."""

    def __init__(self, limiter: SimpleLimiter) -> None:
        self.limiter = limiter
        self.startTime = limiter.clock()
        limiter.inFlight += 1
        self.currentInflight = limiter.inFlight

    def _done(self, sample: bool, drop: bool) -> None:
        lim = self.limiter
        lim.inFlight -= 1
        if sample:
            lim.limitAlgorithm.onSample(self.startTime, lim.clock() - self.startTime, self.currentInflight, drop)
        lim.permits += 1  # semaphore.release()

    def onSuccess(self) -> None:
        self._done(True, False)

    def onDropped(self) -> None:
        self._done(True, True)

    def onIgnore(self) -> None:
        self._done(False, False)
