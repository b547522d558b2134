"""Executors: where the points of a sweep run, in this process, in local processes or on Dask.

Every executor runs ``fn(item)`` over a list of items and yields an :class:`Outcome` per
item as it completes, in any order (``as_completed``), and offers an order-preserving
``map`` so it can also drive :func:`simres.experiments.replications.replicate`. A point that raises
becomes a failed outcome carrying the exception. A point whose worker process dies
(killed, crashed, out of memory) is re-run alone; if it kills its worker again it
becomes ``WorkerDied``, and the innocent points that happened to share the dying pool
are not blamed. So the outcomes are the same whatever the executor and worker count.

``shared`` (of ``as_completed`` and ``map``) is one object every item needs, such as the
scenario of a sweep: it is sent to each worker once, not with every item, and the
function is called as ``fn(shared, item)``.

An executor passed to a sweep belongs to the caller (reuse one Dask cluster for many
sweeps, or one process pool for every stage of a command); use it as a context manager or
call :meth:`Executor.close`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
import sys
import tempfile
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
    def as_completed(self, fn: Callable[..., Any], items: Sequence[Any], *,
                     shared: Any = None) -> Iterator[Outcome]:
        """Yield one :class:`Outcome` per item as it completes, in any order.

        ``fn`` must be picklable (a module-level function) for executors that use other
        processes. Closing the iterator early (or Ctrl-C) cancels what has not finished.
        With ``shared`` (not None), ``fn(shared, item)`` is called instead of ``fn(item)``,
        and ``shared`` travels to each worker once instead of inside every item.
        """

    def map(self, fn: Callable[..., Any], items: Iterable[Any], *, shared: Any = None) -> Iterator[Any]:
        """``fn`` over ``items``, results in input order; re-raises the first failure."""
        items = list(items)
        buffer: dict[int, Outcome] = {}
        following = 0
        gen = self.as_completed(fn, items, shared=shared)
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

    def start(self) -> Executor:
        """Begin starting workers in the background (returns at once); running items does it anyway.

        A command calls this first, so the workers start while it parses and checks its input.
        """
        return self

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

    def as_completed(self, fn: Callable[..., Any], items: Sequence[Any], *,
                     shared: Any = None) -> Iterator[Outcome]:
        for i, item in enumerate(items):
            try:
                value = fn(item) if shared is None else fn(shared, item)
            except Exception as e:
                yield Outcome(i, error=e)
            else:
                yield Outcome(i, value)

    def __repr__(self) -> str:
        return "SerialExecutor()"

    def describe(self) -> str:
        return "serial"


PRELOAD = ("__main__", "simres.experiments._worker_preload")
"""What the forkserver imports before forking workers (:mod:`simres.experiments._worker_preload`
imports the modules a point needs and runs one tiny simulation; ``__main__`` is the caller's
script, which workers import anyway to find functions defined there)."""


def default_start_method() -> str:
    """``forkserver`` on Linux, else ``spawn``.

    A forkserver is a clean interpreter (started like ``spawn``, so no thread or lock of
    this process is inherited) that imports simres once; each worker is then a fork of it
    and starts in ~10 ms instead of ~1 s. ``fork`` from this process would start even
    faster, but copies whatever threads and locks it holds (Jupyter, Dask, pyarrow's
    pools), which can deadlock a worker. macOS and Windows use ``spawn``, which behaves the
    same everywhere (macOS's system libraries are not safe to fork without exec).
    """
    import multiprocessing

    if sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods():
        return "forkserver"
    return "spawn"


class ProcessExecutor(Executor):
    """Local worker processes (``concurrent.futures``; a forkserver on Linux, spawn elsewhere).

    Keeps at most ``2 x workers`` items in flight, so when a worker dies the suspects
    are few: they are re-run one at a time in a fresh pool, and only an item that kills
    its worker alone is reported as :class:`WorkerDied`. The pool starts on first use (or
    in the background from :meth:`start`) and is reused until :meth:`close`, by every
    sweep, replication and validation given this executor: a command makes one and hands
    it to each of its stages, so the workers start once.

    With the ``forkserver`` start method the server process imports simres once
    (:data:`PRELOAD`) and every worker, including a replacement for one that died, is a
    fork of it. The server lives as long as this process, so a second pool starts warm too.

    A ``shared`` object (see :meth:`as_completed`) is pickled once into a file of this
    executor's temporary directory; items carry its hash and path, and each worker reads
    it on first use and keeps the last few in memory.

    Args:
        workers: worker processes; default one per available core.
        start_method: ``forkserver``, ``spawn`` or ``fork``; default
            :func:`default_start_method`. Results are the same for every method.
    """

    def __init__(self, workers: int | None = None, *, start_method: str | None = None) -> None:
        import multiprocessing

        if workers is not None and workers < 1:
            raise SweepError(f"workers: must be >= 1, got {workers}")
        method = start_method or default_start_method()
        if method not in multiprocessing.get_all_start_methods():
            raise SweepError(f"start_method: {method!r} is not available here (available: "
                             f"{', '.join(multiprocessing.get_all_start_methods())})")
        self.workers = workers or available_cores()
        self.start_method = method
        self._pool: Any = None
        self._shared_dir: str | None = None
        self._shared: dict[str, str] = {}  # hash -> file, for the objects already written

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, start_method={self.start_method!r})"

    def describe(self) -> str:
        return f"processes({self.workers})"

    def _context(self) -> Any:
        import multiprocessing

        ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            # effective until the (process-wide) server starts; later calls change nothing
            ctx.set_forkserver_preload(list(PRELOAD))
        return ctx

    def start(self) -> ProcessExecutor:
        """Start the forkserver now, in the background: it imports simres while the caller goes on.

        Returns at once. The first items then wait only for what is left of its import
        (the workers themselves fork from it in milliseconds). Nothing to do for ``spawn``
        or ``fork``, whose workers start with the pool.
        """
        if self.start_method == "forkserver":
            from multiprocessing import forkserver

            self._context()
            forkserver.ensure_running()
        return self

    def _ensure_pool(self) -> Any:
        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context(),
                                             initializer=_init_worker, initargs=(os.getpid(),))
        return self._pool

    def _share(self, shared: Any) -> tuple[str, str]:
        """Write ``shared`` once (keyed by the hash of its pickle) and return (hash, path)."""
        data = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
        key = hashlib.sha256(data).hexdigest()
        if key not in self._shared:
            if self._shared_dir is None:
                self._shared_dir = tempfile.mkdtemp(prefix="simres-shared-")
            path = os.path.join(self._shared_dir, f"{key}.pickle")
            with open(path, "wb") as f:
                f.write(data)
            self._shared[key] = path
        return key, self._shared[key]

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

    def as_completed(self, fn: Callable[..., Any], items: Sequence[Any], *,
                     shared: Any = None) -> Iterator[Outcome]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        if shared is not None:
            ref = self._share(shared)

            def submit(pool: Any, i: int) -> Any:
                return pool.submit(_call_shared, fn, ref, items[i])
        else:
            def submit(pool: Any, i: int) -> Any:
                return pool.submit(fn, items[i])

        todo = deque(range(len(items)))
        isolate: deque[int] = deque()
        finished = False
        try:
            while todo or isolate:
                pool = self._ensure_pool()
                if isolate:  # a suspect from a pool that broke: run it alone
                    i = isolate.popleft()
                    fut = submit(pool, i)
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
                            inflight[submit(pool, i)] = i
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
        directory, self._shared_dir = self._shared_dir, None
        self._shared.clear()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


_SHARED: dict[str, Any] = {}
"""In a worker: the shared objects it has read, by hash (the last :data:`_SHARED_KEEP`)."""
_SHARED_KEEP = 4
SHARED_LOADS = 0
"""In a worker: how many shared objects it has read from their files (tests check it is one per object)."""


def _call_shared(fn: Callable[[Any, Any], Any], ref: tuple[str, str], item: Any) -> Any:
    """In a worker: ``fn(shared, item)``, the shared object read from its file on first use only."""
    global SHARED_LOADS
    key, path = ref
    shared = _SHARED.get(key)
    if shared is None:
        with open(path, "rb") as f:
            shared = pickle.load(f)
        SHARED_LOADS += 1
        while len(_SHARED) >= _SHARED_KEEP:
            _SHARED.pop(next(iter(_SHARED)))
        _SHARED[key] = shared
    return fn(shared, item)


def _apply_shared(fn: Callable[[Any, Any], Any], shared: Any, item: Any) -> Any:
    """On a Dask worker: ``fn(shared, item)`` (Dask resolved ``shared`` from its scattered copy)."""
    return fn(shared, item)


def _init_worker(parent: int) -> None:
    """Worker initializer: leave Ctrl-C to the parent (it stops the workers), and exit if
    the parent dies (``kill -9``, a crash): an orphaned worker would otherwise wait forever.

    A forkserver's worker is the child of the server, not of ``parent``; the server exits
    when ``parent`` does, so in either case the worker's parent process changes."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from simres.experiments import timeouts

    timeouts.IN_WORKER = True  # a point that ignores its time limit may kill this process
    import warnings

    from simres.errors import ScenarioWarning

    # The parent validated the scenario and showed its warnings once; not again per point.
    warnings.simplefilter("ignore", ScenarioWarning)
    first = os.getppid()

    def gone() -> bool:
        if os.getppid() != first:
            return True
        if os.name != "posix":  # pragma: no cover - spawn: the parent is the parent process
            return False
        try:
            os.kill(parent, 0)  # signal 0: a liveness check, nothing is sent
        except ProcessLookupError:
            return True
        except PermissionError:  # pragma: no cover - alive, another user's process
            return False
        return False

    def watch() -> None:
        while not gone():
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

    def as_completed(self, fn: Callable[..., Any], items: Sequence[Any], *,
                     shared: Any = None) -> Iterator[Outcome]:
        import uuid

        from distributed import KilledWorker
        from distributed import as_completed as dask_as_completed

        client = self.client
        tag = uuid.uuid4().hex[:8]
        # the shared object goes to every worker once (scatter), items refer to it
        head = (fn,) if shared is None else (_apply_shared, fn, client.scatter(shared, broadcast=True))

        def submit(i: int, attempt: int) -> Any:
            return client.submit(*head, items[i], key=f"simres-{tag}-{i}-{attempt}", pure=False,
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
