"""Services: instances with workers and a queue, behind a load balancer.

The instance is callback-driven on purpose: a request that needs no downstream call is
served with one SimPy timeout and no process, which keeps the per-request cost at or
below an idiomatic SimPy model. Requests with downstream calls run a sequential handler on
callbacks (:class:`Handling`) when every call site can, otherwise a handler process; a
handler with ``steps`` that mix sequential and parallel calls runs as a process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from heapq import heappush
from typing import TYPE_CHECKING, Any

from simpy import Environment, Event
from simpy.events import NORMAL, AllOf, Timeout

from simres.model.engine import Fired, new
from simres.model.job import INF, READ, Job
from simres.outcomes import (
    CANCELLED,
    CONNECT_TIMEOUT,
    CONNECTION,
    DEGRADED,
    ERROR,
    OK,
    REJECTED,
    SHED,
    SUCCESS_OUTCOMES,
)
from simres.rng import stream, uniform_sampler
from simres.scenario.services import ServiceConfig

if TYPE_CHECKING:
    from simres.model.driver import CallSite



class Instance:
    """One instance of a service: ``workers`` servers, a queue, and fault state."""

    __slots__ = (
        "_eid",
        "_finish_cb",
        "_queue",
        "arrivals",
        "base_err",
        "base_workers",
        "blackhole",
        "busy",
        "busy_time",
        "callback_handler",
        "cancel",
        "cancelled",
        "capacity",
        "chaos",
        "chaos_stack",
        "codel",
        "cold_factor",
        "completions",
        "down",
        "env",
        "epoch",
        "err",
        "err_overrides",
        "errors",
        "handler",
        "index",
        "k",
        "lifo",
        "lifo_threshold",
        "limit_tokens",
        "limiter",
        "log",
        "managed",
        "max_wait",
        "name",
        "node",
        "occ",
        "parallel",
        "qtimes",
        "queue",
        "rejected",
        "row_version",
        "running",
        "sample",
        "service",
        "shed",
        "shedder",
        "slow",
        "steps",
        "u",
        "workers",
    )

    observed = False
    """Whether a subclass must see every completion in :meth:`_complete` (the replication
    instances: a primary logs its writes, a replica records its reads); ``_finish`` then does
    not inline the common one. A class constant, so it costs an instance nothing."""

    def __init__(self, env: Environment, service: str, index: int, cfg: ServiceConfig, seed: int):
        self.env = env
        self.service = service
        self.index = index
        self.node = f"{service}/{index}"
        self.name = self.node
        self.workers = cfg.workers
        self.base_workers = cfg.workers
        self.busy = 0
        self.busy_time = 0.0
        self.queue: deque[Job] = deque()
        self.capacity = cfg.queue.capacity
        self.lifo = cfg.queue.discipline == "lifo"
        qc = cfg.queue
        self.lifo_threshold = qc.lifo_threshold if qc.discipline == "adaptive_lifo" else None
        self.max_wait = qc.max_wait
        self.codel = qc.codel.build(0.0) if qc.codel is not None else None
        self.managed = self.lifo_threshold is not None or self.max_wait is not None or self.codel is not None
        """The queue needs each request's enqueue time (adaptive LIFO, a queue-time limit or CoDel)."""
        self.qtimes: deque[float] = deque()
        """Enqueue times, in step with ``queue``, when ``managed``."""
        self.sample = cfg.service_time.sampler(stream(seed, f"service:{self.node}", "service_time"))
        self.u = uniform_sampler(stream(seed, f"service:{self.node}", "decisions"))
        self.base_err = cfg.error_rate
        self.err = cfg.error_rate
        self.err_overrides: list[float] = []
        self.k = cfg.slowdown_per_inflight
        self.cancel = cfg.on_caller_gone == "cancel"
        self.slow = 1.0
        self.cold_factor = 1.0
        self.down = 0
        self.blackhole = False
        self.epoch = 0
        self.running: dict[Job, None] = {}
        """Jobs in service, in the order they started (a dict: a crash answers them in that order, not by address)."""
        self.shedder = cfg.shedding.build() if cfg.shedding is not None else None
        self.limiter = (cfg.limit.build(rng=uniform_sampler(stream(seed, f"service:{self.node}", "limit")))
                        if cfg.limit is not None else None)
        """Adaptive concurrency limit at admission (Netflix's server interceptor), one per instance."""
        self.limit_tokens: dict[Job, tuple[int, int]] = {}
        """The limiter's token of each admitted request still at this instance."""
        self.chaos: tuple[float, float, float] | None = None  # (rate, p_timeout, p_error)
        self.chaos_stack: list[tuple[float, float, float]] = []  # active chaos faults, latest last
        self.handler: list[tuple[CallSite, bool, Callable[[], float] | None]] = []
        self.parallel = cfg.handler.mode == "parallel"
        plan = cfg.handler.plan()
        self.steps: list[list[int]] | None = None
        """The handler's steps as call indexes, when they are not plain sequential or parallel."""
        if cfg.handler.steps is not None and plan != [[i] for i in range(len(cfg.handler.calls))]:
            self.steps = plan  # steps [a, b, c] in calls order are just sequential: keep the callback path
        self.callback_handler = not self.parallel and self.steps is None
        """The handler runs on callbacks (:class:`Handling`): sequential, every call site can."""
        self.occ = cfg.resource == "occ_row"
        self.row_version = 0
        # cumulative counters, diffed by the timeline sampler
        self.arrivals = 0
        self.completions = 0
        self.errors = 0
        self.rejected = 0
        self.shed = 0
        self.cancelled = 0
        self.log: Any = None
        """The run's decision log (set by the world when it is on), else None."""
        self._finish_cb = self._finish
        """The bound :meth:`_finish`, made once (the callback of every plain service time)."""
        self._queue = env._queue  # type: ignore[attr-defined]
        self._eid = env._eid  # type: ignore[attr-defined]
        """The environment's event queue and id counter: :meth:`_start` schedules inline."""

    def add_call(self, site: CallSite, critical: bool, fallback: Callable[[], float] | None) -> None:
        """Append one downstream call to the handler (in the order the handler makes them)."""
        self.handler.append((site, critical, fallback))
        self.callback_handler = self.callback_handler and site.callbacks

    # -- admission --------------------------------------------------------------------

    def deliver(self, ev: Event) -> None:
        """Callback form of :meth:`submit`, for a request that crossed a network delay."""
        self.submit(ev._value)

    def submit(self, job: Job) -> None:
        """A request arrives at this instance."""
        if job.phased:
            if job._value is CONNECT_TIMEOUT:
                return  # the caller gave up connecting before it got here: never seen
            if not self.down:
                job.connect()  # type: ignore[attr-defined]
        self.arrivals += 1
        if self.down:
            if not self.blackhole:
                job.reply(CONNECTION)
            return
        if self.chaos is not None:
            rate, p_to, p_err = self.chaos
            if self.u() < rate:
                x = self.u()
                if x < p_to:
                    return  # swallowed: the caller times out
                self.errors += 1
                job.reply(ERROR if x < p_to + p_err else CONNECTION)
                return
        if self.shedder is not None and self.shedder.should_shed(
            job.priority, self.busy / self.workers, len(self.queue)
        ):
            self.shed += 1
            if self.log is not None:
                self._log_refusal("shed", job, "shedder")
            job.reply(SHED)
            return
        if self.limiter is not None and not self._limit_admit(job):
            return
        if self.busy < self.workers:
            self._start(job)
        elif self.capacity is not None and len(self.queue) >= self.capacity:
            self.rejected += 1
            if self.limiter is not None:
                self.limiter.ignore(self.limit_tokens.pop(job))
            if self.log is not None:
                self._log_refusal("queue_full", job, "capacity")
            job.reply(REJECTED)
        else:
            self.queue.append(job)
            if self.managed:
                self.qtimes.append(self.env.now)

    def _limit_admit(self, job: Job) -> bool:
        """Ask the concurrency limiter; over the limit the request is refused at once.

        As Netflix's ``ConcurrencyLimitServerInterceptor``: a refusal is an immediate
        UNAVAILABLE (here REJECTED), and the permit is held from arrival until the instance
        is done with the request, so queueing time is part of the RTT the limit reacts to.
        """
        assert self.limiter is not None
        token = self.limiter.acquire_s(self.env.now)
        if token is None:
            self.rejected += 1
            if self.log is not None:
                self._log_refusal("rejected", job, "limit_rejected")
            job.reply(REJECTED)
            return False
        self.limit_tokens[job] = token
        return True

    def _limit_end(self, job: Job) -> None:
        """The instance is done with an admitted request: one sample for the limiter.

        gRPC's server interceptor reports a success for every status but DEADLINE_EXCEEDED,
        and a drop when the caller cancels; here a request whose caller has given up counts
        as a drop, sampled when the instance learns it (when it finishes or drops the work).
        """
        assert self.limiter is not None
        token = self.limit_tokens.pop(job, None)
        if token is None:
            return
        if job.gone:
            self.limiter.dropped_s(token, self.env.now)
        else:
            self.limiter.success_s(token, self.env.now)

    # -- work -------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        env = self.env
        now = env._now
        self.busy += 1
        job.epoch = self.epoch
        job.served = now
        self.running[job] = None
        st = self.sample() * self.slow * self.cold_factor
        if self.k:
            st *= 1.0 + self.k * (self.busy + len(self.queue))
        if self.handler:
            if self.callback_handler:
                Handling(self, job, st)
            else:
                env.process(self._handle(job, st))
        else:
            if st < 0:
                raise ValueError(f"Negative delay {st}")  # as Timeout would
            ev = new(Fired)  # Timeout(env, st, job) with _finish as its callback, made inline
            ev.callbacks = [self._finish_cb]
            ev._value = job
            heappush(self._queue, (now + st, NORMAL, next(self._eid), ev))
        self.busy_time -= now  # closed by adding the finish time

    def _finish(self, ev: Event) -> None:
        job: Job = ev._value
        if job.epoch != self.epoch:
            return  # the instance crashed while this was in service
        if self.occ and job.op:
            # the commit point of the optimistic-concurrency row
            if job.op == READ:
                job.version = self.row_version
            elif job.version == self.row_version:
                self.row_version += 1
            else:
                self._complete(job, ERROR)  # write conflict
                return
        if self.err and self.u() < self.err:
            self._complete(job, ERROR)
            return
        if self.observed:
            self._complete(job, OK)  # a subclass watches every completion there (replication)
            return
        # _complete(job, OK), inlined: most requests end here
        self.busy -= 1
        self.busy_time += self.env._now  # type: ignore[attr-defined]
        self.running.pop(job, None)
        self.completions += 1
        if self.limiter is not None:
            self._limit_end(job)
        job.reply(OK)
        if self.queue:
            self._next()

    def _complete(self, job: Job, outcome: str) -> None:
        self.busy -= 1
        self.busy_time += self.env._now
        self.running.pop(job, None)
        self.completions += 1
        if outcome is not OK and outcome not in SUCCESS_OUTCOMES:
            self.errors += 1
        if self.limiter is not None:
            self._limit_end(job)
        job.reply(outcome)
        if self.queue:
            self._next()

    def _drop_cancelled(self, job: Job) -> None:
        """Work in service whose caller is gone is dropped after its downstream calls (cancel mode)."""
        self.busy -= 1
        self.busy_time += self.env.now
        self.running.pop(job, None)
        self.cancelled += 1
        if self.limiter is not None:
            self._limit_end(job)
        self._next()

    def _next(self) -> None:
        if self.managed:
            self._next_managed()
            return
        q = self.queue
        while q and self.busy < self.workers:
            job = q.pop() if self.lifo else q.popleft()
            if self.cancel and job.gone:
                self._skip_gone(job)
                continue
            self._start(job)

    def withdraw(self, job: Job) -> None:
        """The caller cancelled this try (a hedge's loser, already marked ``gone``).

        An instance that honours cancellation (``on_caller_gone: cancel``) skips it if it is
        queued (at dequeue, as any gone job) and stops it now if it is in its own work: the
        worker is freed and the job's finish is ignored. A job whose handler is making
        downstream calls stops at its next step, as for a gone caller. Otherwise nothing
        changes: the work runs on.
        """
        if not self.cancel or job not in self.running or self.handler:
            return
        job.epoch = -1  # its finish event no longer matches this instance's epoch
        self._drop_cancelled(job)

    def _skip_gone(self, job: Job) -> None:
        """A queued request whose caller has given up is dropped, not served (cancel mode)."""
        self.cancelled += 1
        if self.limiter is not None:
            self._limit_end(job)

    def _next_managed(self) -> None:
        """:meth:`_next` with a queue-time limit, adaptive LIFO or CoDel, as HHVM and folly dequeue.

        HHVM's ``JobQueue::dequeueMaybeExpiredImpl``: if the oldest request has waited longer
        than ``max_wait`` it is expired (shed) instead; otherwise the newest is taken while at
        least ``lifo_threshold`` others remain, else the oldest. Then folly's Codel judges the
        taken request's queueing delay, as Thrift's thread manager does, and may shed it.
        """
        q, times, now = self.queue, self.qtimes, self.env.now
        while q and self.busy < self.workers:
            if self.max_wait is not None and now - times[0] > self.max_wait:
                times.popleft()
                self._shed_queued(q.popleft())
                continue
            if self.lifo or (self.lifo_threshold is not None and len(q) - 1 >= self.lifo_threshold):
                job, waited = q.pop(), now - times.pop()
            else:
                job, waited = q.popleft(), now - times.popleft()
            if self.cancel and job.gone:
                self._skip_gone(job)
                continue
            if self.codel is not None and self.codel.overloaded(waited, now):
                self._shed_queued(job)
                continue
            self._start(job)

    def _log_refusal(self, event: str, job: Job, why: str) -> None:
        """Decision log: this instance refused ``job``, with the load that made it refuse."""
        fields: dict[str, Any] = {
            "req": job.req_id, "try": job.try_id, "parent": job.parent, "why": why, "priority": job.priority,
            "queue_length": len(self.queue), "busy": self.busy, "workers": self.workers,
            "utilization": self.busy / self.workers if self.workers else None,
        }
        if why == "capacity":
            fields["capacity"] = self.capacity
        elif why == "limit_rejected" and self.limiter is not None:
            fields.update(limit=float(self.limiter.limit), in_flight=self.limiter.inflight)
        elif why == "queue_delay":
            fields.update(max_wait=self.max_wait, codel=self.codel is not None)
        self.log.emit(event, self.env.now, self.node, **fields)

    def _shed_queued(self, job: Job) -> None:
        """A queued request dropped for its queueing delay: answered at once with SHED."""
        if self.log is not None:
            self._log_refusal("shed", job, "queue_delay")
        self.shed += 1
        if self.limiter is not None:
            self._limit_end(job)
        job.reply(SHED)

    def _handle(self, job: Job, st: float) -> Generator[Event, Any, None]:
        """Own work, then the downstream calls (one after another, all at once, or by
        ``steps``); the worker is held throughout.

        A sequential handler whose call sites all run on callbacks uses :class:`Handling`
        instead, the same steps without a process; keep the two in step.
        """
        env = self.env
        yield Timeout(env, st)
        if job.epoch != self.epoch:
            return
        if self.err and self.u() < self.err:
            self._complete(job, ERROR)
            return
        parent_deadline = job.deadline if self.cancel else INF
        outcome = OK
        handler = self.handler  # the calls made, in the order their results are folded
        if self.steps is not None:
            # Steps one after another; the calls of one step at once, the step ending with the
            # last of them. A failed critical call fails the request: its step's other calls
            # still finish (nothing is cancelled), later steps are not made.
            results = []
            made: list[int] = []
            for step in self.steps:
                if self.cancel and job.gone:
                    break
                if len(step) == 1:
                    res, _ = yield from handler[step[0]][0].call(job.req_id, job.priority, parent_deadline, job.try_id)
                    got = [res]
                else:
                    procs = [env.process(handler[i][0].call(job.req_id, job.priority, parent_deadline, job.try_id))
                             for i in step]
                    yield AllOf(env, procs)
                    got = [p.value[0] for p in procs]
                results += got
                made += step
                if any(handler[i][1] and res not in SUCCESS_OUTCOMES for i, res in zip(step, got)):
                    break
            handler = [handler[i] for i in made]
        elif self.parallel:
            procs = [env.process(site.call(job.req_id, job.priority, parent_deadline, job.try_id))
                     for site, _, _ in self.handler]
            yield AllOf(env, procs)
            results = [p.value[0] for p in procs]
        else:
            results = []
            for site, critical, _ in self.handler:
                if self.cancel and job.gone:
                    break
                res, _ = yield from site.call(job.req_id, job.priority, parent_deadline, job.try_id)
                results.append(res)
                if critical and res not in SUCCESS_OUTCOMES:
                    break
        if self.cancel and job.gone and len(results) < len(self.handler):
            outcome = CANCELLED
        for (_, critical, fallback), res in zip(handler, results):
            if res in SUCCESS_OUTCOMES:
                if res == DEGRADED and outcome == OK:
                    outcome = DEGRADED
                continue
            if critical:
                outcome = ERROR
                break
            outcome = DEGRADED
            if fallback is not None:
                fb = fallback()
                if fb > 0:
                    yield Timeout(env, fb)
        if job.epoch != self.epoch:
            return
        if outcome == CANCELLED:
            self._drop_cancelled(job)
            return
        self._complete(job, outcome)

    # -- faults -----------------------------------------------------------------------

    def set_workers(self, n: int) -> None:
        """Change the worker count (capacity fault); queued work starts if workers were added."""
        self.workers = max(1, n)
        self._next()

    def crash(self, blackhole: bool) -> None:
        """Go down: queued and in-service requests are lost (refuse mode answers CONNECTION)."""
        self.down += 1
        if self.down > 1:
            return
        self.blackhole = blackhole
        self.epoch += 1
        now = self.env.now
        lost = list(self.running) + list(self.queue)
        self.busy_time += now * self.busy
        self.busy = 0
        self.running.clear()
        self.queue.clear()
        self.qtimes.clear()
        if self.limiter is not None:
            # The process died with its limiter's books: a restarted instance starts afresh.
            self.limit_tokens.clear()
            self.limiter.reset()
        if not blackhole:
            for job in lost:
                job.reply(CONNECTION)

    def push_chaos(self, spec: tuple[float, float, float]) -> None:
        """Start a chaos fault; the most recent active one applies."""
        self.chaos_stack.append(spec)
        self.chaos = spec

    def pop_chaos(self, spec: tuple[float, float, float]) -> None:
        """End one chaos fault (whichever order overlapping faults end in)."""
        for i in range(len(self.chaos_stack) - 1, -1, -1):
            if self.chaos_stack[i] is spec:
                del self.chaos_stack[i]
                break
        self.chaos = self.chaos_stack[-1] if self.chaos_stack else None

    def restart(self) -> None:
        """Come back up (empty)."""
        self.down = max(0, self.down - 1)

    def set_error_override(self, p: float | None, *, remove: bool = False) -> None:
        """Add or remove an error-burst probability; the highest active one applies."""
        if remove:
            self.err_overrides.remove(p)  # type: ignore[arg-type]
        else:
            self.err_overrides.append(p)  # type: ignore[arg-type]
        self.err = max([self.base_err, *self.err_overrides])

    @property
    def inflight(self) -> int:
        """Requests queued or in service."""
        return self.busy + len(self.queue)

    def utilization_time(self, now: float) -> float:
        """Worker-seconds of busy time up to ``now``."""
        return self.busy_time + self.busy * now


class Handling:
    """One request's handler on callbacks: :meth:`Instance._handle` (sequential mode) as a
    state machine, resumed at the same points (own work done, each call ended, each
    fallback's latency elapsed), so events, draws and records come in the same order."""

    __slots__ = ("i", "inst", "job", "outcome", "results")

    def __init__(self, inst: Instance, job: Job, st: float) -> None:
        self.inst = inst
        self.job = job
        self.results: list[str] = []
        self.i = 0
        self.outcome = OK
        Timeout(inst.env, st).callbacks.append(self._worked)

    def _worked(self, _ev: Event) -> None:
        inst, job = self.inst, self.job
        if job.epoch != inst.epoch:
            return
        if inst.err and inst.u() < inst.err:
            inst._complete(job, ERROR)
            return
        self._call()

    def _call(self) -> None:
        """Make the next downstream call, or go on to the results."""
        inst, job = self.inst, self.job
        if self.i < len(inst.handler) and not (inst.cancel and job.gone):
            site = inst.handler[self.i][0]
            call = site.new_call(job.req_id, job.priority, self._called, job.deadline if inst.cancel else INF,
                                 job.try_id)
            call.start()
            return
        if inst.cancel and job.gone and len(self.results) < len(inst.handler):
            self.outcome = CANCELLED
        self.i = 0
        self._fold()

    def _called(self, call: Any) -> None:
        res = call.outcome
        self.results.append(res)
        critical = self.inst.handler[self.i][1]
        self.i += 1
        if critical and res not in SUCCESS_OUTCOMES:
            self.i = len(self.inst.handler)  # stop calling
        self._call()

    def _fold(self, _ev: Event | None = None) -> None:
        """Fold the results into the outcome, waiting out each fallback's latency in turn."""
        inst = self.inst
        results = self.results
        while self.i < len(results):
            res = results[self.i]
            _, critical, fallback = inst.handler[self.i]
            self.i += 1
            if res in SUCCESS_OUTCOMES:
                if res == DEGRADED and self.outcome == OK:
                    self.outcome = DEGRADED
                continue
            if critical:
                self.outcome = ERROR
                break
            self.outcome = DEGRADED
            if fallback is not None:
                fb = fallback()
                if fb > 0:
                    Timeout(inst.env, fb).callbacks.append(self._fold)
                    return
        self._end()

    def _end(self) -> None:
        inst, job = self.inst, self.job
        if job.epoch != inst.epoch:
            return
        if self.outcome == CANCELLED:
            inst._drop_cancelled(job)
            return
        inst._complete(job, self.outcome)


class Service:
    """A named service: its instances and its load-balancing policy.

    Instances are picked by each caller's :class:`~simres.model.driver.CallSite`, because a
    real client-side balancer (round robin, least request, power of two choices) works from
    what *that caller* has outstanding to each host, not from the server's own queue: a
    host that swallows requests must look busy to its callers, not idle.
    """

    def __init__(self, env: Environment, name: str, cfg: ServiceConfig, seed: int,
                 instance_cls: type[Instance] | None = None):
        self.name = name
        self.cfg = cfg
        self.load_balancer = cfg.load_balancer
        cls = Instance if instance_cls is None else instance_cls  # a replication subclass for primaries and replicas
        self.instances = [cls(env, name, i, cfg, seed) for i in range(cfg.instances)]
        self.autoscale: Any = None
        """The service's :class:`~simres.model.autoscale.ServiceAutoscaler` (set by the world), or None."""
