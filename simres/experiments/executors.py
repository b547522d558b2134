"""Executors: where the points of a sweep run, in this process, in local processes or on Dask.

Every executor runs ``fn(item)`` over a list of items and yields an :class:`Outcome` per
item as it completes, in any order (``as_completed``), and offers an order-preserving
``map`` so it can also drive :func:`simres.experiments.replications.replicate`. A point that raises
becomes a failed outcome carrying the exception. A point whose worker process dies
(killed, crashed, out of memory) is re-run alone; if it kills its worker again it
becomes ``WorkerDied``, and the innocent points that happened to share the dying pool
are not blamed. So the outcomes are the same whatever the executor and worker count.

An executor passed to a sweep belongs to the caller (reuse one Dask cluster for many
sweeps); use it as a context manager or call :meth:`Executor.close`.
"""

from __future__ import annotations

import contextlib
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from simres.errors import SweepError


class WorkerDied(SweepError):
    """The worker process running a point died, twice: once in a pool, once alone."""

    def __init__(self, message: str = "the worker process died while running this point "
                                      "(killed, crashed or out of memory)") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Outcome:
    """The result of one item: ``value`` if it succeeded, else the ``error`` it raised."""

    index: int
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None


def available_cores() -> int:
    """Cores this process may run on (the CPU affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


class Executor(ABC):
    """Runs a function over items; subclasses define :meth:`as_completed`."""

    workers: int = 1

    @abstractmethod
    def as_completed(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        """Yield one :class:`Outcome` per item as it completes, in any order.

        ``fn`` must be picklable (a module-level function) for executors that use other
        processes. Closing the iterator early (or Ctrl-C) cancels what has not finished.
        """

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """``fn`` over ``items``, results in input order; re-raises the first failure."""
        items = list(items)
        buffer: dict[int, Outcome] = {}
        following = 0
        gen = self.as_completed(fn, items)
        try:
            for outcome in gen:
                buffer[outcome.index] = outcome
                while following in buffer:
                    done = buffer.pop(following)
                    if done.error is not None:
                        raise done.error
                    yield done.value
                    following += 1
        finally:
            gen.close()

    def close(self) -> None:  # noqa: B027 - optional hook: a serial executor holds nothing
        """Release processes and connections (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """A short label for progress lines: ``serial``, ``processes(4)``, ``dask(...)``."""
        return repr(self)


class SerialExecutor(Executor):
    """Runs every item in this process, one after the other, in order."""

    workers = 1

    def as_completed(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        for i, item in enumerate(items):
            try:
                value = fn(item)
            except Exception as e:
                yield Outcome(i, error=e)
            else:
                yield Outcome(i, value)

    def __repr__(self) -> str:
        return "SerialExecutor()"

    def describe(self) -> str:
        return "serial"


class ProcessExecutor(Executor):
    """Local worker processes (``concurrent.futures``, spawn start method).

    Keeps at most ``2 x workers`` items in flight, so when a worker dies the suspects
    are few: they are re-run one at a time in a fresh pool, and only an item that kills
    its worker alone is reported as :class:`WorkerDied`. The pool starts on first use
    and is reused until :meth:`close`.

    Args:
        workers: worker processes; default one per available core.
        start_method: multiprocessing start method; ``spawn`` (the default) is safe
            with threads and behaves the same on every OS.
    """

    def __init__(self, workers: int | None = None, *, start_method: str = "spawn") -> None:
        if workers is not None and workers < 1:
            raise SweepError(f"workers: must be >= 1, got {workers}")
        self.workers = workers or available_cores()
        self.start_method = start_method
        self._pool: Any = None

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, start_method={self.start_method!r})"

    def describe(self) -> str:
        return f"processes({self.workers})"

    def _ensure_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context(self.start_method)
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                             initializer=_init_worker, initargs=(os.getpid(),))
        return self._pool

    def _discard_pool(self, *, kill: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # concurrent.futures cannot stop a running task; on Ctrl-C or an abandoned sweep
        # the workers are terminated so nothing keeps running behind the user's back.
        procs = list((getattr(pool, "_processes", None) or {}).values()) if kill else []
        pool.shutdown(wait=not kill, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)

    def as_completed(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        todo = deque(range(len(items)))
        isolate: deque[int] = deque()
        finished = False
        try:
            while todo or isolate:
                pool = self._ensure_pool()
                if isolate:  # a suspect from a pool that broke: run it alone
                    i = isolate.popleft()
                    fut = pool.submit(fn, items[i])
                    exc = fut.exception()
                    if isinstance(exc, BrokenProcessPool):
                        self._discard_pool()
                        yield Outcome(i, error=WorkerDied())
                    else:
                        yield Outcome(i, fut.result() if exc is None else None, exc)
                    continue
                inflight: dict[Any, int] = {}
                broken = False
                while (todo or inflight) and not broken:
                    while todo and len(inflight) < 2 * self.workers:
                        i = todo.popleft()
                        try:
                            inflight[pool.submit(fn, items[i])] = i
                        except BrokenProcessPool:
                            todo.appendleft(i)
                            broken = True
                            break
                    if not inflight:
                        break
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=inflight.__getitem__):
                        i = inflight.pop(fut)
                        exc = fut.exception()
                        if isinstance(exc, BrokenProcessPool):
                            isolate.append(i)
                            broken = True
                        else:
                            yield Outcome(i, fut.result() if exc is None else None, exc)
                if broken:  # the rest fail at once; those that finished first are kept
                    wait(inflight)
                    for fut, i in sorted(inflight.items(), key=lambda kv: kv[1]):
                        exc = fut.exception()
                        if isinstance(exc, BrokenProcessPool):
                            isolate.append(i)
                        else:
                            yield Outcome(i, fut.result() if exc is None else None, exc)
                    self._discard_pool()
            finished = True
        finally:
            if not finished:
                self._discard_pool(kill=True)

    def close(self) -> None:
        self._discard_pool()


def _init_worker(parent: int) -> None:
    """Worker initializer: leave Ctrl-C to the parent (it stops the workers), and exit if
    the parent dies (``kill -9``, a crash): an orphaned worker would otherwise wait forever."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from simres.experiments import timeouts

    timeouts.IN_WORKER = True  # a point that ignores its time limit may kill this process
    import warnings

    from simres.errors import ScenarioWarning

    # The parent validated the scenario and showed its warnings once; not again per point.
    warnings.simplefilter("ignore", ScenarioWarning)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="simres-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C while starting worker processes, which inherit it: the parent handles
    Ctrl-C and closes the cluster, instead of every worker printing a traceback."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class DaskExecutor(Executor):
    """A Dask distributed cluster: an existing scheduler, or a LocalCluster started here.

    Args:
        address: ``tcp://host:8786`` for a running scheduler (its workers need simres
            installed), or ``"local"`` to start a LocalCluster of worker processes.
        workers: worker processes of a local cluster (one thread each); ignored for an
            existing cluster.
        connect_timeout: seconds to wait for a remote scheduler.

    Each point is submitted with ``retries=0``. A local cluster also sets the scheduler's
    ``allowed-failures`` to 0, so a worker death fails its task at once; the task is then
    re-run alone and becomes :class:`WorkerDied` only if it kills a worker again (on an
    existing cluster the scheduler's own setting applies first, 3 by default).
    """

    def __init__(self, address: str = "local", *, workers: int = 2,
                 connect_timeout: float = 10.0) -> None:
        if workers < 1:
            raise SweepError(f"workers: must be >= 1, got {workers}")
        self.address = address
        self.n_workers = workers
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._cluster: Any = None

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address!r}, workers={self.n_workers})"

    def describe(self) -> str:
        where = f"local cluster, {self.n_workers} workers" if self.address == "local" else self.address
        return f"dask({where})"

    @property
    def workers(self) -> int:  # type: ignore[override]
        """Worker threads in the cluster (starts or connects to it)."""
        return max(1, sum(self.client.nthreads().values()))

    @property
    def client(self) -> Any:
        """The ``distributed.Client``, created on first use."""
        if self._client is None:
            try:
                import dask
                from distributed import Client, LocalCluster
            except ImportError:  # pragma: no cover - dask is an optional extra
                raise SweepError("the Dask executor needs dask[distributed]: "
                                 "pip install 'simres[dask]'") from None
            if self.address == "local":
                import logging

                with dask.config.set({"distributed.scheduler.allowed-failures": 0}), _sigint_ignored():
                    self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                                 processes=True, dashboard_address=":0",
                                                 silence_logs=logging.ERROR)
                self._client = Client(self._cluster)
            else:
                try:
                    self._client = Client(self.address, timeout=self.connect_timeout)
                except (OSError, TimeoutError, ValueError) as e:
                    raise SweepError(f"dask: cannot connect to a scheduler at {self.address!r} "
                                     f"({type(e).__name__}: {e})") from None
        return self._client

    @property
    def dashboard_link(self) -> str | None:
        """The cluster's dashboard URL, if it has one."""
        try:
            return str(self.client.dashboard_link)
        except Exception:
            return None

    def as_completed(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        import uuid

        from distributed import KilledWorker
        from distributed import as_completed as dask_as_completed

        client = self.client
        tag = uuid.uuid4().hex[:8]

        def submit(i: int, attempt: int) -> Any:
            return client.submit(fn, items[i], key=f"simres-{tag}-{i}-{attempt}", pure=False,
                                 retries=0)

        futures = {submit(i, 0): i for i in range(len(items))}
        finished = False
        try:
            suspects: list[int] = []
            for fut in dask_as_completed(list(futures)):
                i = futures.pop(fut)
                outcome = self._outcome(fut, i)
                fut.release()
                if isinstance(outcome.error, KilledWorker):
                    suspects.append(i)
                else:
                    yield outcome
            for i in sorted(suspects):  # re-run alone: only a point that kills again is blamed
                fut = submit(i, 1)
                futures[fut] = i
                outcome = self._outcome(fut, i)
                futures.pop(fut)
                fut.release()
                if isinstance(outcome.error, KilledWorker):
                    outcome = Outcome(i, error=WorkerDied())
                yield outcome
            finished = True
        finally:
            if not finished and futures:
                client.cancel(list(futures))

    @staticmethod
    def _outcome(fut: Any, i: int) -> Outcome:
        try:
            return Outcome(i, fut.result())
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # also a cancelled future (asyncio.CancelledError)
            return Outcome(i, error=e)

    def close(self) -> None:
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def make_executor(*, jobs: int | None = None, dask: str | None = None) -> Executor:
    """The executor for CLI flags: ``--dask ADDRESS|local``, else ``--jobs`` processes.

    ``jobs=1`` runs serially in this process; ``jobs=None`` uses one process per core.
    With ``dask="local"``, ``jobs`` is the number of local workers (default 2).
    """
    if jobs is not None and jobs < 1:
        raise SweepError(f"--jobs: must be >= 1, got {jobs}")
    if dask:
        return DaskExecutor(dask, workers=jobs or 2)
    if jobs == 1:
        return SerialExecutor()
    return ProcessExecutor(jobs)
