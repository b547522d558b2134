"""The trace export on the command line: ``simres trace RUN_DIR`` and ``simres run --trace FILE``.

Both write :func:`simres.metrics.traces.write_trace`'s output; this module only parses and
checks the flags (one line naming the flag, exit 2) and says what it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from simres.cli._util import check_out_path, examples, friendly, out_option, quiet_option, seed_option
from simres.errors import SimresError

F = TypeVar("F", bound=Callable[..., Any])

SAMPLE_HELP = ("Which requests to export: all, failures (outcome not ok/degraded), 1/N (one in N, decided by the "
               "trace id), around:FAULT (starting from 5 s before the named fault to 10 s after it ends) or "
               "window:T0:T1 (starting in [T0, T1] simulated seconds).")
EPOCH_HELP = "Wall-clock time of simulated second 0, ISO 8601 [default: 2026-01-01T00:00:00Z]."
FORMAT_HELP = ("OTLP JSON lines (one TracesData per line, as the OpenTelemetry Collector's file exporter "
               "writes and its otlpjsonfile receiver reads) or Chrome/Perfetto trace-event JSON.")


def trace_options(fn: F) -> F:
    """``--trace FILE``, ``--trace-format``, ``--trace-sample``, ``--trace-epoch`` of ``simres run``."""
    fn = click.option("--trace-epoch", "trace_epoch", default=None, metavar="TIME", help=EPOCH_HELP)(fn)
    fn = click.option("--trace-sample", "trace_sample", default="all", show_default=True, metavar="SPEC",
                      help=SAMPLE_HELP)(fn)
    fn = click.option("--trace-format", "trace_format", type=click.Choice(["otlp", "chrome"]), default="otlp",
                      show_default=True, help="Format of the --trace file: " + FORMAT_HELP)(fn)
    return click.option("--trace", "trace", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                        help="Also write every (sampled) request as an OpenTelemetry trace to FILE: a span per "
                             "logical call and per try, nested by parent try (docs/observability.md).")(fn)


def check_trace_path(path: str, flag: str) -> None:
    """Refuse a trace file that cannot be written, before any work; an existing file is overwritten."""
    import os
    from pathlib import Path

    p = Path(path)
    if p.is_file():
        if not os.access(p, os.W_OK):
            raise SimresError(f"{flag} {p}: cannot write there: permission denied")
        return
    check_out_path(p, flag=flag)


def _flag_error(e: Any, prefix: str) -> SimresError:
    """A :class:`~simres.metrics.traces.TraceError` as one line naming the flag (``--trace-sample: ...``)."""
    return SimresError(f"{prefix}{e.field}: {e.detail}")


def check_trace_flags(sample: str, epoch: str | None, *, faults: Sequence[str] | None, prefix: str) -> None:
    """Refuse a bad sample spec (an unknown fault too, given ``faults``) or epoch before any work."""
    from simres.metrics.traces import TraceError, epoch_nanos, parse_sample

    try:
        parse_sample(sample, faults=faults)
        epoch_nanos(epoch)
    except TraceError as e:
        raise _flag_error(e, prefix) from None


def export_trace(frames: Any, path: str, fmt: str, sample: str, epoch: str | None, *, prefix: str,
                 quiet: bool = False, seed: int | None = None) -> None:
    """Write the trace file and say what it holds (requests, spans, size, time)."""
    from simres.metrics.traces import TraceError, write_trace

    t0 = time.perf_counter()
    try:
        done = write_trace(frames, path, fmt, sample=sample, epoch=epoch, seed=seed)
    except TraceError as e:
        if e.field == "frames":
            raise SimresError(f"{path}: {e.detail}") from None
        raise _flag_error(e, prefix) from None
    click.echo(f"wrote {done.path}: {done.requests:,} requests, {done.spans:,} spans ({fmt}, sample {sample}), "
               f"{done.bytes / 1e6:.1f} MB" + ("" if quiet else f" in {time.perf_counter() - t0:.1f} s"))


@click.command(name="trace", short_help="Write a saved run's requests as OpenTelemetry traces (or Chrome JSON).",
               epilog=examples("simres trace results/run1 -o run1.otlp.jsonl",
                               "simres trace results/run1 -o outage.json --format chrome "
                               "--sample around:inventory-outage",
                               "simres trace results/run1 -o failed.jsonl --sample failures"))
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False))
@out_option("file", "the traces (OTLP JSON lines, or Chrome trace-event JSON with --format chrome).",
            required=True)
@click.option("--format", "fmt", type=click.Choice(["otlp", "chrome"]), default="otlp", show_default=True,
              help="Output format: " + FORMAT_HELP)
@click.option("--sample", default="all", show_default=True, metavar="SPEC", help=SAMPLE_HELP)
@click.option("--epoch", default=None, metavar="TIME", help=EPOCH_HELP)
@seed_option("the run's, from its summary")
@quiet_option()
@friendly
def trace_cmd(run_dir: str, out: str, fmt: str, sample: str, epoch: str | None, seed: int | None,
              quiet: bool) -> None:
    """Write every request of RUN_DIR (what `simres run --out DIR` wrote) as a trace.

    One trace per request: a span per logical call (the client's request, each downstream
    call a handler made) and per try, nested by parent try, with the service, instance,
    outcome, attempt and local decisions (breaker, bulkhead, throttle, shed, hedges, budget
    denials) as attributes and span events. Simulated time is mapped onto wall-clock time
    from --epoch; ids are hashes of the seed and request/try ids, so the file is the same
    for the same run. See docs/observability.md for opening it in a Collector, Jaeger,
    Tempo or ui.perfetto.dev.
    """
    from simres.metrics.traces import fault_names
    from simres.reporting.sources import load_run

    check_trace_path(out, "--out")
    frames = load_run(run_dir)
    check_trace_flags(sample, epoch, faults=fault_names(frames.events), prefix="--")
    export_trace(frames, out, fmt, sample, epoch, prefix="--", quiet=quiet, seed=seed)
