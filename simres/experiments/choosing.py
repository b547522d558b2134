"""Choosing a setting from sweep results: constraints, the winner with intervals, runners-up, the reproducing command.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import yaml

from simres.errors import SweepError
from simres.experiments.design import decode_param
from simres.experiments.store import ID_COLUMNS, TAIL_COLUMNS, load_results

if TYPE_CHECKING:
    import pandas as pd




# ---------------------------------------------------------------------------- choosing


class NoFeasibleSetting(SweepError):
    """No configuration of a sweep satisfies the constraints (the CLI exits with status 1)."""


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, e.g. ``success_rate >= 0.999``."""

    metric: str
    op: Literal[">=", "<=", ">", "<"]
    bound: float

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the constraint (NaN never does)."""
        if math.isnan(value):
            return False
        return {">=": value >= self.bound, "<=": value <= self.bound,
                ">": value > self.bound, "<": value < self.bound}[self.op]

    @property
    def wants_high(self) -> bool:
        """True for ``>=``/``>``: the pessimistic bound is then the interval's low end."""
        return self.op.startswith(">")

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


_CONSTRAINT = re.compile(r"\s*(?P<metric>[^<>\s]*[^<>=!\s])\s*(?P<op>>=|<=|>|<)\s*(?P<bound>[^<>=\s]+)\s*")


def parse_constraint(text: str) -> Constraint:
    """Parse ``METRIC OP NUMBER`` with OP one of ``>=``, ``<=``, ``>``, ``<``.

    Metric names may hold ``:`` and ``=`` but not end with ``=`` or ``!``, so a mistyped
    operator (``=>``, ``=<``, ``==``, ``!=``) is an error, not part of the metric's name.
    """
    m = _CONSTRAINT.fullmatch(text)
    try:
        bound = float(m["bound"]) if m else math.nan
    except ValueError:
        bound = math.nan
    if m is None or not math.isfinite(bound):
        raise SweepError(f"--subject-to {text!r}: expected METRIC OP NUMBER with OP one of "
                         ">=, <=, >, < (e.g. 'success_rate >= 0.999' or 'latency_p99 < 0.2')")
    return Constraint(m["metric"], m["op"], bound)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Choice:
    """The best setting of a sweep and how it compares with the others (see :func:`best`)."""

    objective: str
    maximize: bool
    constraints: tuple[Constraint, ...]
    conservative: bool
    confidence: float
    table: pd.DataFrame = field(repr=False)
    """One row per configuration, feasible ones first by rank: parameters, variant, ``n``,
    ``errors``, ``feasible``, ``violates``, ``<metric>_mean/_lo/_hi`` for the objective and
    constrained metrics, ``rank``, ``diff`` (vs the winner) with ``diff_lo``/``diff_hi``,
    ``p_value`` (paired t-test over replicates) and ``significant``."""
    winner: dict[str, Any]
    overrides: dict[str, Any]
    command: str
    top: int = 5

    @property
    def yaml(self) -> str:
        """A YAML snippet: the winner as a scenario variant named ``best``."""
        return yaml.safe_dump({"variants": {"best": self.overrides}}, sort_keys=False)

    def __str__(self) -> str:
        t, obj = self.table, self.objective
        where = "the pessimistic CI bound" if self.conservative else "the mean"
        subject = " and ".join(map(str, self.constraints)) or "no constraint"
        n_ok, n_err = int(t.feasible.sum()), int((t.errors > 0).sum())
        lines = [f"{'maximize' if self.maximize else 'minimize'} {obj} subject to {subject} "
                 f"(constraints on {where})",
                 f"{len(t)} configurations: {n_ok} feasible, {len(t) - n_ok - n_err} violate a "
                 f"constraint, {n_err} had error rows", "", "best:"]
        w = t.iloc[0]
        width = max((len(k) for k in [*self.winner, obj, *(c.metric for c in self.constraints)]), default=8)
        lines += [f"  {k:<{width}}  {_show(v)}" for k, v in self.winner.items()]
        pct = round(self.confidence * 100)
        for m in dict.fromkeys([obj, *(c.metric for c in self.constraints)]):
            lines.append(f"  {m:<{width}}  {_fmt_num(w[f'{m}_mean'])}  {pct}% CI "
                         f"[{_fmt_num(w[f'{m}_lo'])}, {_fmt_num(w[f'{m}_hi'])}]  (n={int(w.n)})")
        runners = t[t.feasible].iloc[1:1 + self.top]
        if len(runners):
            lines += ["", f"runners-up (difference in {obj} from the best, paired over replicates):"]
            cols = [*self.winner]
            rows = [["#", *cols, obj, "diff", f"{pct}% CI", "p", ""]]
            for _, rd in runners.iterrows():
                sig = "significant" if rd["significant"] else "not significant"
                rows.append([str(int(rd["rank"])), *(_show(rd[c]) for c in cols),
                             _fmt_num(rd[f"{obj}_mean"]), _fmt_num(rd["diff"], sign=True),
                             f"[{_fmt_num(rd['diff_lo'], sign=True)}, {_fmt_num(rd['diff_hi'], sign=True)}]",
                             _fmt_num(rd["p_value"]), sig])
            widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
            lines += ["  " + "  ".join(c.ljust(wd) for c, wd in zip(row, widths, strict=True)).rstrip()
                      for row in rows]
        lines += ["", "reproduce:", f"  {self.command}", "", "or add this variant to the scenario:"]
        lines += ["  " + ln for ln in self.yaml.rstrip().splitlines()]
        return "\n".join(lines)


def best(results: pd.DataFrame | str | os.PathLike[str], *, minimize: str | None = None,
         maximize: str | None = None, subject_to: Sequence[str | Constraint] = (),
         conservative: bool = False, confidence: float = 0.95, top: int = 5) -> Choice:
    """Choose the best configuration of a sweep under constraints.

    Replications are aggregated per configuration (parameters + variant). A configuration
    is feasible when every constraint holds on its mean (``conservative=True``: on the
    pessimistic end of its confidence interval) and none of its points ended in an error;
    the feasible one with the best mean objective wins. Runners-up are compared with it by
    a paired t-test over replicates, which share seeds (common random numbers).

    Raises:
        SweepError: a bad argument (unknown metric, malformed constraint).
        NoFeasibleSetting: no configuration satisfies the constraints.
    """
    import numpy as np
    import pandas as pd

    from simres.metrics.stats import aggregate_replications, paired_difference

    df = results if isinstance(results, pd.DataFrame) else load_results(results)
    meta = df.attrs.get("sweep") or {}
    if (minimize is None) == (maximize is None):
        raise SweepError("objective: give exactly one of --minimize METRIC or --maximize METRIC")
    objective = str(minimize or maximize)
    cons = tuple(c if isinstance(c, Constraint) else parse_constraint(c) for c in subject_to)
    needed = list(dict.fromkeys([objective, *(c.metric for c in cons)]))
    params = [p for p in meta.get("params", []) if p in df] or [
        c for c in df.columns if "." in c and ":" not in c]
    for m in needed:
        if m not in df.columns or m in (*ID_COLUMNS, *TAIL_COLUMNS, *params):
            import difflib

            known = [c for c in df.columns if c not in (*ID_COLUMNS, *TAIL_COLUMNS, *params)]
            hint = difflib.get_close_matches(m, known, n=1)
            raise SweepError(f"metric '{m}': not in the results"
                             + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    if df.empty:
        raise NoFeasibleSetting("the results hold no rows")
    group = [*params, "variant"]
    df = df.assign(_cfg=[json.dumps(k, default=str) for k in df[group].astype(object).itertuples(index=False)])
    configs = df.drop_duplicates("_cfg").set_index("_cfg")[group]
    configs["errors"] = df.groupby("_cfg", sort=False)["error"].count()
    ok = df[df["error"].isna()]
    agg = aggregate_replications(ok, group_cols=["_cfg"], metrics=needed, confidence=confidence)
    wide = agg.pivot(index="_cfg", columns="metric", values=["mean", "lo", "hi", "n"])
    for m in needed:
        for stat in ("mean", "lo", "hi"):
            configs[f"{m}_{stat}"] = wide.get((stat, m), np.nan)
    configs["n"] = wide[("n", objective)].reindex(configs.index).fillna(0).astype(int) \
        if ("n", objective) in wide else 0
    violates = []
    for _, row in configs.iterrows():
        why = "errors" if row["errors"] else ("no value" if pd.isna(row[f"{objective}_mean"]) else "")
        for c in cons:
            stat = ("lo" if c.wants_high else "hi") if conservative else "mean"
            if not why and not c.holds(float(row[f"{c.metric}_{stat}"])):
                why = f"{c.metric} {_fmt_num(row[f'{c.metric}_{stat}'])}"
        violates.append(why)
    configs["violates"] = violates
    configs["feasible"] = configs["violates"] == ""
    if not configs["feasible"].any():
        closest = "; ".join(f"best {c.metric} reached {_fmt_num(_extreme(configs[f'{c.metric}_mean'], c))}"
                            for c in cons)
        raise NoFeasibleSetting(f"no configuration satisfies {' and '.join(map(str, cons)) or 'the run'} "
                                f"({len(configs)} tried{'; ' + closest if closest else ''})")
    configs["_order"] = range(len(configs))
    key = configs[f"{objective}_mean"] * (-1 if maximize else 1)
    configs = configs.assign(_key=key.where(configs["feasible"], np.inf)).sort_values(
        ["_key", "_order"], kind="stable")
    configs["rank"] = np.where(configs["feasible"], np.arange(1, len(configs) + 1), 0)
    win_cfg = configs.index[0]
    by_rep = ok.pivot_table(index="replicate", columns="_cfg", values=objective, aggfunc="first")
    diffs = []
    for cfg in configs.index:
        if cfg not in by_rep or win_cfg not in by_rep:
            diffs.append((np.nan,) * 4)
            continue
        d = paired_difference(by_rep[cfg].to_numpy(float), by_rep[win_cfg].to_numpy(float),
                              confidence=confidence)
        diffs.append((d.mean, d.lo, d.hi, d.p_value))
    configs[["diff", "diff_lo", "diff_hi", "p_value"]] = pd.DataFrame(diffs, index=configs.index)
    configs["significant"] = configs["p_value"] < 1 - confidence
    table = configs.drop(columns=["_order", "_key"]).reset_index(drop=True)
    dtypes = meta.get("dtypes", {})
    winner = {p: decode_param(table.at[0, p], dtypes[p]) if p in dtypes else _plain(table.at[0, p])
              for p in params}
    variant = str(table.at[0, "variant"])
    overrides = {**meta.get("overrides", {}), **meta.get("variant_overrides", {}).get(variant, {}), **winner}
    if variant or len(meta.get("variants", [])) > 1:
        winner["variant"] = variant or "(as written)"
    return Choice(objective, maximize is not None, cons, conservative, confidence, table,
                  winner, overrides, _command(meta, variant, winner, params), top)


def _extreme(values: pd.Series, c: Constraint) -> float:
    return float(values.max() if c.wants_high else values.min())


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _command(meta: Mapping[str, Any], variant: str, winner: Mapping[str, Any], params: Sequence[str]) -> str:
    import shlex

    scenario = str(meta.get("scenario", "<mapping>"))
    parts = ["simres", "run", "SCENARIO" if scenario == "<mapping>" else shlex.quote(scenario)]
    if variant:
        parts += ["--variant", shlex.quote(variant)]
    sets = {**meta.get("overrides", {}), **{p: winner[p] for p in params}}
    parts += [f"--set {shlex.quote(f'{k}={_yaml_value(v)}')}" for k, v in sets.items()]
    if meta.get("reps"):
        parts += ["--reps", str(meta["reps"])]
    if meta.get("seed") is not None:
        parts += ["--seed", str(meta["seed"])]
    return " ".join(parts)


def _yaml_value(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()


def _show(v: Any) -> str:
    """A parameter value as it would be written in YAML (missing -> null)."""
    import pandas as pd

    if isinstance(v, str):
        return v
    if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
        return "null"
    return _yaml_value(_plain(v))


def _fmt_num(x: Any, *, sign: bool = False) -> str:
    x = float(x)
    if math.isnan(x):
        return "-"
    flag = "+" if sign else ""
    return f"{x:{flag}.3g}" if x and (abs(x) >= 1e5 or abs(x) < 1e-3) else f"{x:{flag}.4g}"
