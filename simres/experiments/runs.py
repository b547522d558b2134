"""Scenario -> built model -> simulate -> :class:`RunResult`.

This is the whole of a run: nothing here knows about sweeps, plots or the CLI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from simpy.events import Timeout

from simres.errors import SimresError
from simres.metrics.hedging import hedge_summary
from simres.metrics.recorder import Recorder
from simres.metrics.streaming_recovery import schedule
from simres.metrics.summary import (
    HERD_PERIOD,
    HERD_WINDOW,
    RECOVERY_HOLD,
    RECOVERY_WINDOW,
    cache_keys,
    saga_keys,
    summarize,
)
from simres.model.replication import replica_keys
from simres.model.world import build, join_timeouts, timeline_frame, timeline_rows_frame
from simres.progress import Progress
from simres.rng import check_seed
from simres.scenario.loading import load_scenario, resolved_dict
from simres.scenario.schema import Scenario

FRAMES = ("requests", "attempts", "timeline", "events")


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced: tidy frames, a one-row summary and how it was made."""

    scenario: Scenario
    seed: int
    variant: str | None
    requests: pd.DataFrame
    attempts: pd.DataFrame
    timeline: pd.DataFrame
    events: pd.DataFrame
    summary: dict[str, float]
    wall_time: float
    utilization: dict[str, float] = field(default_factory=dict)
    record: str = "full"
    """``full``, or ``summary``: then ``requests`` and ``attempts`` are empty (nothing
    per-request was kept) and ``summary`` lacks the keys of ``streaming.UNAVAILABLE``."""
    decision_log: Path | None = None
    """The decision log the run wrote (``run(..., decision_log=path)``), or None."""
    decision_log_lines: int = 0
    """Lines in the decision log."""
    decision_log_error: str | None = None
    """Why the decision log is incomplete (one line), or None: the run's results are whole either way."""

    @property
    def duration(self) -> float:
        """Simulated seconds of arrivals."""
        return self.scenario.duration

    @property
    def warmup(self) -> float:
        """Seconds excluded from steady-state metrics."""
        return self.scenario.warmup

    def summary_frame(self) -> pd.DataFrame:
        """The summary as a one-row DataFrame with the scenario name, variant and seed."""
        row = {"scenario": self.scenario.name, "variant": self.variant or "", "seed": self.seed}
        row.update(self.summary)
        return pd.DataFrame([row])

    def write(self, out: str | os.PathLike[str], fmt: str = "parquet") -> list[Path]:
        """Write every frame (and the summary) to ``out/<frame>.<fmt>``; returns the paths.

        A ``record: summary`` run has no requests or attempts frame to write (use ``--stream``)."""
        if fmt not in ("parquet", "csv"):
            raise SimresError(f"format: expected 'parquet' or 'csv', got {fmt!r}")
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        frames = {name: getattr(self, name) for name in FRAMES
                  if self.record == "full" or name not in ("requests", "attempts")}
        frames["summary"] = self.summary_frame()
        for name, df in frames.items():
            p = d / f"{name}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(p, index=False)
            else:
                df.to_csv(p, index=False)
            paths.append(p)
        return paths

    def __repr__(self) -> str:
        return (f"RunResult(scenario={self.scenario.name!r}, seed={self.seed}, variant={self.variant!r}, "
                f"requests={len(self.requests)}, attempts={len(self.attempts)})")

    def plot(self, kind: str | None = None, **options: Any) -> Any:
        """A figure of this run: ``timeline`` (the default), ``cdf``, ``ccdf`` or ``herd``.

        The figures live in :mod:`simres.reporting.plots`, which this layer may not import;
        ``import simres`` registers them (:mod:`simres.experiments.results`).
        """
        from simres.experiments.results import draw

        return draw("run", self, kind, **options)

    def _repr_html_(self) -> str:
        """In Jupyter: the grouped summary (the view ``simres run`` prints) as a compact table."""
        import html

        from simres.metrics.display import grouped_rows

        title = html.escape(f"{self.scenario.name}" + (f" [{self.variant}]" if self.variant else "")
                            + f": seed {self.seed}, {len(self.requests):,} requests, {self.wall_time:.2f} s wall")
        rows, last = [], None
        for group, label, value in grouped_rows(self.summary):
            head = html.escape(group) if group != last else ""
            rows.append(f"<tr><th style='text-align:left'>{head}</th><td style='text-align:left'>"
                        f"{html.escape(label)}</td><td style='text-align:right'>{html.escape(value)}</td></tr>")
            last = group
        return (f"<div><b>{title}</b><table>{''.join(rows)}</table>"
                "<small>.summary has every key; .requests, .attempts, .timeline, .events the frames; "
                ".plot(kind) draws 'timeline', 'cdf', 'ccdf' or 'herd'</small></div>")


def run(
    scenario: Scenario | str | os.PathLike[str] | Mapping[str, Any],
    *,
    seed: int | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    variant: str | None = None,
    progress: Callable[[float, float], None] | bool | None = None,
    stream: str | os.PathLike[str] | None = None,
    decision_log: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Run one scenario once.

    Args:
        scenario: a Scenario, a path, a bundled scenario name, or a mapping.
        seed: root seed; defaults to the scenario's ``seed``.
        overrides: dotted-path overrides (``{"services.db.workers": 4}`` or ``["services.db.workers=4"]``).
        variant: name of one of the scenario's variants to apply first.
        progress: called as ``progress(simulated_now, simulated_end)`` while running; ``True``
            shows a bar of simulated time (:mod:`simres.progress`: a terminal's stderr or
            Jupyter, never a pipe) for runs of more than about 2 s.
        stream: a directory: write the requests and attempts frames there in Parquet chunks as
            the run goes (:mod:`simres.experiments.spill`), plus timeline, events and summary at
            the end; implies ``record: summary`` for what stays in memory.
        decision_log: a file: write every decision (breaker transitions with their evidence,
            retries, budget answers, refusals, faults) to it as JSON lines
            (:mod:`simres.metrics.decisions`); the frames are the same with it or without it.
            If writing fails the run still completes: ``decision_log_error`` says why and a
            :class:`~simres.metrics.decisions.DecisionLogWarning` is issued.

    With ``record: summary`` (or ``stream``) the result's ``requests`` and ``attempts`` are
    empty frames and its summary comes from mergeable counts and latency sketches
    (:mod:`simres.metrics.streaming`): memory stays flat however many requests the run makes.
    """
    sc = load_scenario(scenario, overrides=overrides, variant=variant)
    if progress is True:
        with Progress(0, label=sc.name, unit="sim s", min_total=2.0) as bar:
            return replace(run(sc, seed=seed, progress=bar, stream=stream, decision_log=decision_log),
                           variant=variant)  # variant applied
    progress = progress or None
    seed = sc.seed if seed is None else check_seed(seed)
    t0 = time.perf_counter()
    world = build(sc, seed)
    if decision_log is not None:
        from simres.metrics.decisions import DecisionLog

        log = DecisionLog(decision_log)
        world.attach_log(log)
        try:
            result = _run_world(sc, seed, variant, world, progress, stream, t0)
        finally:
            log.close()
        if log.error is not None:
            import warnings

            from simres.metrics.decisions import DecisionLogWarning

            warnings.warn(log.error, DecisionLogWarning, stacklevel=2)
        return replace(result, decision_log=log.path, decision_log_lines=log.lines,
                       decision_log_error=log.error)
    return _run_world(sc, seed, variant, world, progress, stream, t0)


def _utilization(sc: Scenario, snaps: dict[str, dict[str, float]], world: Any) -> dict[str, float]:
    """Busy worker-seconds over the steady state / the worker-seconds there were: the pool's
    for a fixed service, the ready instances' (integrated) for an autoscaled one."""
    span = sc.duration - sc.warmup
    cap0 = snaps.get("capacity_start", {})
    cap1 = snaps.get("capacity_end") or world.capacity_seconds()
    out = {}
    for n, s in sc.services.items():
        busy = snaps["end"][n] - snaps["start"][n]
        if s.autoscale is not None:
            cap = cap1[n] - cap0.get(n, 0.0)
            out[n] = busy / cap if cap > 0 else float("nan")
        else:
            out[n] = busy / (span * s.workers * s.instances)
    return out


def _run_world(sc: Scenario, seed: int, variant: str | None, world: Any,
               progress: Callable[[float, float], None] | None, stream: str | os.PathLike[str] | None,
               t0: float) -> RunResult:
    """Run a built world to the end and make its result (the body of :func:`run`)."""
    snaps: dict[str, dict[str, float]] = {}

    def snapshot() -> Any:
        if sc.warmup > 0:
            yield Timeout(world.env, sc.warmup)
        snaps["start"] = world.busy_seconds()
        snaps["capacity_start"] = world.capacity_seconds()
        yield Timeout(world.env, sc.duration - sc.warmup)
        snaps["end"] = world.busy_seconds()
        snaps["capacity_end"] = world.capacity_seconds()

    world.env.process(snapshot())
    if stream is not None or sc.record == "summary":
        return _run_summary(sc, seed, variant, world, snaps, progress, stream, t0)
    # Progress at least every 1/10,000 of the run (and every simulated second of short ones):
    # a run of duration 1e6 reports within seconds, not after its first 2 %.
    chunks = int(min(max(sc.end_time, 50), 10_000))
    rec = world.run(progress=progress, chunks=chunks) if progress is not None else world.run()
    # with drain == 0 the run stops at `duration` before the snapshot process wakes up
    snaps.setdefault("end", world.busy_seconds())
    requests = rec.requests_frame()
    attempts = rec.attempts_frame()
    timeline = timeline_frame(rec, attempts, sc.timeline_step)
    events = rec.events_frame()
    util = _utilization(sc, snaps, world)
    summary = summarize(requests, attempts, timeline, events, warmup=sc.warmup,
                        duration=sc.duration, slo=sc.slo, breaker_links=breaker_links(sc))
    for n, u in util.items():
        summary[f"utilization:{n}"] = u  # exact busy-time integral beats bucket sampling
    if hedges(sc):
        summary.update(hedge_summary(requests, events, warmup=sc.warmup, duration=sc.duration))
    if world.replication is not None:
        replica_keys(summary, world.replication, warmup=sc.warmup, duration=sc.duration)
    return RunResult(
        scenario=sc, seed=seed, variant=variant, requests=requests, attempts=attempts,
        timeline=timeline, events=events, summary=summary,
        wall_time=time.perf_counter() - t0, utilization=util,
    )


def hedges(scenario: Scenario) -> bool:
    """Whether any call of the scenario, or of one of its variants, is hedged: its summary
    then has the hedge keys (0 in a variant without hedging, so variants compare)."""
    return (any(c.hedge is not None for c in scenario.clients.values())
            or any(call.hedge is not None for s in scenario.services.values() for call in s.handler.calls)
            or any(_sets_hedge(v) for v in scenario.variants.values()))


def _sets_hedge(overrides: Any) -> bool:
    """Whether variant overrides set a ``hedge`` anywhere: a dotted path with a ``hedge``
    segment, or a mapping (a whole call or client replaced) with a ``hedge`` key."""
    if isinstance(overrides, dict):
        return any("hedge" in str(k).split(".") or _sets_hedge(v) for k, v in overrides.items())
    if isinstance(overrides, list):
        return any(_sets_hedge(v) for v in overrides)
    return False


FLUSH_ROWS = 100_000
"""Summary mode: the recorder's columns are handed over (and cleared) once either frame
has this many rows, checked between chunks of simulated time."""


TIMELINE_ROWS = 10_000
"""Summary mode: timeline rows are compacted into a frame chunk once this many are pending."""


def _run_summary(sc: Scenario, seed: int, variant: str | None, world: Any, snaps: dict[str, dict[str, float]],
                 progress: Callable[[float, float], None] | None, stream: str | os.PathLike[str] | None,
                 t0: float) -> RunResult:
    """``record: summary`` / ``--stream``: the run with the recorder flushed every
    :data:`FLUSH_ROWS` rows into a :class:`StreamSummary` (and a Parquet spill)."""
    from simres.experiments.spill import ParquetSpill
    from simres.metrics.streaming import StreamSummary

    rec = world.recorder
    acc = StreamSummary(warmup=sc.warmup, duration=sc.duration, slo=sc.slo, timeline_step=sc.timeline_step)
    service_names = list(sc.services)
    service_index = {name: i for i, name in enumerate(service_names)}
    acc.count_herds(lambda: [service_index[svc] for _, svc, _ in rec.site_names()], len(service_names),
                    [f.end for f in sc.faults if f.end is not None], window=HERD_WINDOW, period=HERD_PERIOD)
    acc.judge_recovery(schedule(f for f in sc.faults if f.at < sc.end_time), window=RECOVERY_WINDOW,
                       hold=RECOVERY_HOLD)
    spill = ParquetSpill(stream, rec) if stream is not None else None

    def first_measured(_: Any) -> None:
        # Request ids are drawn in start order from one counter; this timer is scheduled
        # before any arrival, so at t = warmup it fires before a request starts at warmup.
        acc.first_measured_id = int(repr(world.ids)[len("count("):-1])

    if sc.warmup > 0:
        Timeout(world.env, sc.warmup).callbacks.append(first_measured)

    timeline_chunks: list[pd.DataFrame] = []

    site_services: dict[int, str] = {}

    def flush(force: bool = False, compact: bool = False) -> None:
        if not compact and len(rec.timeline_rows) >= TIMELINE_ROWS:
            flush(force=True, compact=True)
            return
        if force or rec.attempts_recorded() >= FLUSH_ROWS:
            cols = rec.take_attempts()
            acc.add_attempts(cols["a_req"], cols["a_site"], cols["a_attempt"], cols["a_start"], cols["a_end"],
                             cols["a_outcome"], cols["a_sent"])
            if spill is not None:
                spill.write_attempts(cols)
        if compact:
            # Every try that timed out in a bucket ending two steps ago has been recorded and,
            # just above, handed over: those buckets' rows are final, timeouts included.
            chunk = timeline_rows_frame(rec, before=world.env.now - 2 * sc.timeline_step)
            if len(chunk):
                if not site_services:
                    site_services.update((i, s[1]) for i, s in enumerate(rec.site_names()))
                join_timeouts(chunk, acc.timeout_counts(site_services, upto=float(chunk["time"].iloc[-1])))
                timeline_chunks.append(chunk)
        if force or rec.requests_recorded() >= FLUSH_ROWS:
            cols = rec.take_requests()
            acc.add_requests(cols["r_group"], cols["r_member"], cols["r_start"], cols["r_end"], cols["r_outcome"])
            if spill is not None:
                spill.write_requests(cols)

    try:
        world.run(progress=progress, chunks=int(min(max(sc.end_time, 50), 10_000)), between=flush)
        flush(force=True)
        snaps.setdefault("end", world.busy_seconds())
        sites = rec.site_names()
        timeline = timeline_frame(rec, None, sc.timeline_step,
                                  timeouts=acc.timeout_counts({i: s[1] for i, s in enumerate(sites)}),
                                  earlier=timeline_chunks)
        events = rec.events_frame()
        summary = acc.summary(groups=rec.group_names(), sites=sites, timeline=timeline, events=events,
                              breaker_links=breaker_links(sc), service_names=service_names)
        if "cache_lookups" in timeline.columns:
            cache_keys(summary, timeline, warmup=sc.warmup, duration=sc.duration)
        util = _utilization(sc, snaps, world)
        for n, u in util.items():
            summary[f"utilization:{n}"] = u
        if hedges(sc):
            summary.update(acc.hedge_summary(events))
        if world.replication is not None:
            replica_keys(summary, world.replication, warmup=sc.warmup, duration=sc.duration)
        if len(events):  # sagas: counted from their events; the measured ones from the first id at warmup
            first = acc.first_measured_id
            saga_keys(summary, timeline, events,
                      lambda ids: ids >= first if first is not None else np.zeros(len(ids), dtype=bool))
        empty = Recorder()
        result = RunResult(
            scenario=sc, seed=seed, variant=variant, requests=empty.requests_frame(),
            attempts=empty.attempts_frame(), timeline=timeline, events=events, summary=summary,
            wall_time=time.perf_counter() - t0, utilization=util, record="summary",
        )
        if spill is not None:
            for name in ("timeline", "events"):
                getattr(result, name).to_parquet(spill.dir / f"{name}.parquet", index=False)
            result.summary_frame().to_parquet(spill.dir / "summary.parquet", index=False)
        return result
    finally:
        if spill is not None:
            spill.close()


def breaker_links(scenario: Scenario) -> set[str]:
    """The ``caller->callee`` links of a scenario that have a circuit breaker."""
    links = {f"{name}->{c.target}" for name, c in scenario.clients.items() if c.breaker is not None}
    for name, c in scenario.clients.items():
        for step in c.saga.steps if c.saga is not None else ():
            links |= {f"{name}->{call.to}" for call in (step, step.compensate)
                      if call is not None and call.breaker is not None}
    for name, s in scenario.services.items():
        links |= {f"{name}->{call.to}" for call in s.handler.calls if call.breaker is not None}
    return links


def scenario_yaml(scenario: Scenario) -> str:
    """The fully resolved scenario as YAML (what ``simres show`` prints)."""
    import yaml

    return yaml.safe_dump(resolved_dict(scenario), sort_keys=False, default_flow_style=False)
