"""Client populations: open-loop arrival processes and closed-loop users.

Each member of a population has its own arrival stream (seeded by client name and
member index) and, with ``per_client`` scope, its own policy state. Time-varying rates
(profiles and load faults) use thinning against an upper bound, which is exact for a
non-homogeneous Poisson process.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Generator
from functools import partial
from heapq import heappush
from typing import Any

from simpy import Environment, Event
from simpy.events import NORMAL, Timeout

from simres.metrics.recorder import REQUEST_CODES, REQUEST_ROW, Recorder
from simres.model.driver import INF, Call, CallSite
from simres.model.engine import Fired, new
from simres.model.job import Job
from simres.model.saga import SagaSites, run_saga
from simres.outcomes import UNFINISHED
from simres.rng import growing, stream, uniform_sampler
from simres.scenario.clients import ClientConfig, ClosedArrivals, ConstantArrivals, PoissonArrivals, ProfileArrivals

_REQUEST_ROW = REQUEST_ROW.pack


class _PoissonSource:
    """A homogeneous Poisson arrival stream driven by timeout callbacks."""

    __slots__ = ("env", "fire", "gaps", "lam", "stop")

    def __init__(self, env: Environment, gaps: Any, lam: float, stop: float, fire: Any):
        self.env = env
        self.gaps = gaps
        self.lam = lam
        self.stop = stop
        self.fire = fire

    def schedule(self) -> None:
        """Schedule the next arrival: ``Timeout(env, gaps() / lam)`` with :meth:`_arrive` as its
        callback, made inline (one per request)."""
        env = self.env
        ev = new(Fired)
        ev.callbacks = [self._arrive]
        heappush(env._queue, (env._now + self.gaps() / self.lam, NORMAL, next(env._eid), ev))  # type: ignore[attr-defined]

    def _arrive(self, _ev: Event) -> None:
        env = self.env
        if env._now >= self.stop:  # type: ignore[attr-defined]
            return
        self.fire()
        ev = new(Fired)  # schedule(), inlined
        ev.callbacks = [self._arrive]
        heappush(env._queue, (env._now + self.gaps() / self.lam, NORMAL, next(env._eid), ev))  # type: ignore[attr-defined]


class _ProfileSource:
    """A profile's non-homogeneous Poisson stream: thinning against the profile's highest rate.

    Candidates come at the highest rate and each is kept with probability rate(t) / highest
    (Lewis and Shedler's thinning, exact). Only kept candidates become events: the rejected
    ones are drawn in a plain loop, so a profile whose peak is 600 times its trough (a burst,
    then a trickle) costs one event per request instead of one per candidate. The loop adds
    the same gaps in the same order as one event per candidate did, and the kept arrival is
    scheduled at that absolute instant, so the arrival times (and the frames) are unchanged.
    """

    __slots__ = ("ats", "env", "fire", "gaps", "lam", "linear", "rates", "stop", "u")

    def __init__(self, env: Environment, gaps: Any, u: Any, arr: ProfileArrivals, stop: float, fire: Any):
        self.env = env
        self.gaps = gaps
        self.u = u
        self.lam = arr.max_rate
        self.ats = [p.at for p in arr.points]
        self.rates = [p.rate for p in arr.points]
        self.linear = arr.shape == "linear"
        self.stop = stop
        self.fire = fire

    def rate_at(self, t: float) -> float:
        """:meth:`ProfileArrivals.rate_at` by bisection (the same arithmetic, so the same floats)."""
        i = bisect_right(self.ats, t) - 1
        rates = self.rates
        if i < 0:
            return rates[0]
        if i >= len(rates) - 1:
            return rates[-1]
        if self.linear:
            a, b = self.ats[i], self.ats[i + 1]
            return rates[i] + (rates[i + 1] - rates[i]) * (t - a) / (b - a)
        return rates[i]

    def schedule(self) -> None:
        """Schedule the next kept arrival (none once the candidates pass ``stop``)."""
        env = self.env
        gaps, u, lam, stop, rate_at = self.gaps, self.u, self.lam, self.stop, self.rate_at
        t = env.now
        while True:
            t = t + gaps() / lam  # what ``env.now + delay`` gave for each candidate's own event
            if t >= stop:
                return
            if u() * lam < rate_at(t):
                break
        ev = Event(env)
        ev._ok = True  # a triggered event, like a Timeout, at the absolute time ``t``:
        ev._value = None  # env.schedule() takes a delay, and now + (t - now) may round off t
        heappush(env._queue, (t, NORMAL, next(env._eid), ev))  # type: ignore[attr-defined]
        ev.callbacks.append(self._arrive)  # type: ignore[union-attr]

    def _arrive(self, _ev: Event) -> None:
        self.fire()
        self.schedule()


class ClientPopulation:
    """``count`` members sending requests to one target service."""

    def __init__(self, *, env: Environment, name: str, cfg: ClientConfig, sites: list[CallSite],
                 recorder: Recorder, ids: itertools.count[int], seed: int, end: float,
                 max_load_factor: float, open_requests: dict[int, tuple[Any, ...]],
                 min_load_factor: float = 1.0, surge_start: float = 0.0,
                 sagas: list[SagaSites] | None = None):
        self.env = env
        self.name = name
        self.cfg = cfg
        self.sites = sites
        self.recorder = recorder
        self._record = recorder.request_coded
        self._add_row = recorder.add_request_row
        """Appends one packed request row (the callback paths record their rows themselves)."""
        self._group = recorder.group(name, cfg.target, cfg.priority)
        """This population's code for its request rows (client, target, priority)."""
        self.ids = ids
        self.seed = seed
        self.stop = min(cfg.stop, end) if cfg.stop is not None else end
        self.load_factor = 1.0  # changed by load faults
        self.max_load_factor = max_load_factor
        self.min_load_factor = min_load_factor
        self.surge_start = surge_start
        self.open = open_requests
        self.sagas = sagas
        """With workflow: saga, each member's steps (:mod:`simres.model.saga`)."""
        self._target = cfg.target
        self._priority = cfg.priority
        self._fast_done_cb = self._fast_done
        """The bound :meth:`_fast_done`, made once (the callback of every policy-free request)."""
        self._callback_done_cb = self._callback_done

    def start(self) -> None:
        """Start every member's arrival process."""
        arr = self.cfg.arrival
        for m, site in enumerate(self.sites):
            if isinstance(arr, ClosedArrivals):
                for user in range(arr.users):
                    think = arr.think_time.sampler(stream(self.seed, f"client:{self.name}/{m}/{user}", "think"))
                    self.env.process(self._user(m, site, think))
            else:
                self.env.process(self._open_loop(m, site))

    def _open_loop(self, m: int, site: CallSite) -> Generator[Event, Any, None]:
        env = self.env
        arr = self.cfg.arrival
        comp = f"client:{self.name}/{m}"
        if self.cfg.start > 0:
            yield Timeout(env, self.cfg.start)
        stop = self.stop
        fast = site.simple and self.cfg.workflow == "call"
        if isinstance(arr, ConstantArrivals):
            while True:
                yield Timeout(env, 1.0 / (arr.rate * self.load_factor))
                if env.now >= stop:
                    return
                if fast:
                    self._fast_request(m, site)
                else:
                    env.process(self._request(m, site))
        assert isinstance(arr, PoissonArrivals | ProfileArrivals)
        # The scenario's own traffic is drawn from streams that no fault touches, so a run
        # with a load fault and the same run without it see identical arrivals until the
        # fault starts (common random numbers). A factor f < 1 thins this traffic with its
        # own uniform stream (drawn only while f < 1); the part of f > 1 above 1 is a second,
        # independent Poisson process (superposition) that starts with the first load fault.
        if fast:
            fire = partial(self._fast_request, m, site)  # a partial calls faster than a lambda
        elif site.callbacks and self.cfg.workflow == "call":
            fire = partial(self._callback_request, m, site)
        else:
            fire = lambda: env.process(self._request(m, site))  # noqa: E731
        if self.max_load_factor > 1.0:
            env.process(self._surge(m, fire))
        if self.min_load_factor < 1.0:
            thin = uniform_sampler(stream(self.seed, comp, "load_thinning"))
            send = fire

            def fire() -> None:
                if self.load_factor >= 1.0 or thin() < self.load_factor:
                    send()

        rng = stream(self.seed, comp, "arrivals")
        gaps = growing(lambda n: rng.exponential(1.0, n))
        if not isinstance(arr, ProfileArrivals):
            # The common case runs on callbacks alone (no generator resumed per arrival).
            _PoissonSource(env, gaps, arr.rate, stop, fire).schedule()
            return
        u = uniform_sampler(stream(self.seed, comp, "thinning"))
        _ProfileSource(env, gaps, u, arr, stop, fire).schedule()

    def _surge(self, m: int, fire: Any) -> Generator[Event, Any, None]:
        """The extra arrivals of load faults with factor > 1: rate (f - 1) x the base rate.

        Thinned from a Poisson process at the bound ``(max_load_factor - 1) x max rate``,
        on streams of its own, from the first load fault on (a Poisson process may start
        anywhere: it has no memory).
        """
        env = self.env
        arr = self.cfg.arrival
        comp = f"client:{self.name}/{m}"
        profile = arr if isinstance(arr, ProfileArrivals) else None
        base = arr.max_rate if profile is not None else arr.rate  # type: ignore[union-attr]
        lam = (self.max_load_factor - 1.0) * base
        rng = stream(self.seed, comp, "surge_arrivals")
        gaps = growing(lambda n: rng.exponential(1.0, n))
        u = uniform_sampler(stream(self.seed, comp, "surge_thinning"))
        if self.surge_start > env.now:
            yield Timeout(env, self.surge_start - env.now)
        stop = self.stop
        while True:
            yield Timeout(env, gaps() / lam)
            now = env.now
            if now >= stop:
                return
            extra = self.load_factor - 1.0
            if extra > 0 and u() * lam < extra * (profile.rate_at(now) if profile is not None else base):
                fire()

    def _request(self, m: int, site: CallSite) -> Generator[Event, Any, None]:
        start = self.env.now
        rid = next(self.ids)
        self.open[rid] = (self.name, m, site.target.name, self.cfg.priority, start)
        if self.cfg.workflow == "read_then_write":
            outcome, tries = yield from site.read_then_write(rid, self.cfg.priority)
        elif self.sagas is not None:
            outcome, tries = yield from run_saga(self.recorder, self.name, self.sagas[m], rid, self.cfg.priority)
        else:
            outcome, tries = yield from site.call(rid, self.cfg.priority, INF)
        del self.open[rid]
        self._record(rid, self._group, m, start, self.env.now, outcome, tries)

    def _fast_request(self, m: int, site: CallSite) -> None:
        """A request with no client policy, driven by callbacks (no SimPy process).

        Only for a ``simple`` call site (no policy at all): one try, sent at once, whose job
        (an event) ends with the reply and calls :meth:`_fast_done`. The same try that
        :meth:`CallSite.call` makes when every policy is off, minus the process.
        """
        rid = next(self.ids)
        env = self.env
        start = env._now  # type: ignore[attr-defined]
        self.open[rid] = (self.name, m, self._target, self._priority, start)
        idx = site.pick()
        job = Job(env, rid, self._priority, INF, site.back_links[idx], site._next_try())
        job.t0 = start
        job.idx = idx
        site._send(job, idx)
        job.callbacks.append(self._fast_done_cb)
        job.member = m

    def _fast_done(self, job: Any) -> None:
        """The try of :meth:`_fast_request` ended: its attempt row, then its request row."""
        m = job.member
        idx = job.idx
        site = self.sites[m]
        site.outstanding[idx] -= 1
        rid = job.req_id
        now = self.env._now  # type: ignore[attr-defined]
        outcome = job._value
        site._record(rid, 1, idx, job.t0, now, outcome, True, 0.0, job.try_id, -1, job.served)
        del self.open[rid]
        self._add_row(_REQUEST_ROW(rid, self._group, m, job.t0, now, REQUEST_CODES[outcome], 1))  # request_coded

    def _callback_request(self, m: int, site: CallSite) -> None:
        """A request whose call runs on callbacks (:class:`~simres.model.driver.Call`): the
        same request as :meth:`_request`, without a SimPy process."""
        start = self.env._now  # type: ignore[attr-defined]
        rid = next(self.ids)
        self.open[rid] = (self.name, m, self._target, self._priority, start)
        call = (Call(site, rid, self._priority, self._callback_done_cb, INF, -1) if site.hedge is None
                else site.new_call(rid, self._priority, self._callback_done_cb))  # new_call, inlined
        call.tag = (m, start)
        call.start()

    def _callback_done(self, call: Any) -> None:
        m, start = call.tag
        rid = call.req_id
        del self.open[rid]
        self._add_row(_REQUEST_ROW(rid, self._group, m, start, self.env._now,  # type: ignore[attr-defined]
                                   REQUEST_CODES[call.outcome], call.attempt))  # Recorder.request_coded, inlined

    def _user(self, m: int, site: CallSite, think: Any) -> Generator[Event, Any, None]:
        env = self.env
        if self.cfg.start > 0:
            yield Timeout(env, self.cfg.start)
        left = self.cfg.requests_per_member
        while env.now < self.stop and (left is None or left > 0):
            if left is not None:
                left -= 1
            yield from self._request(m, site)
            t = think()
            if t > 0:
                yield Timeout(env, t)


def record_unfinished(recorder: Recorder, open_requests: dict[int, tuple[Any, ...]]) -> None:
    """Requests still in flight when the run ends become rows with outcome ``unfinished``."""
    for rid, (client, m, target, priority, start) in open_requests.items():
        recorder.request(rid, client, m, target, priority, start, float("nan"), UNFINISHED, 0)
    open_requests.clear()
