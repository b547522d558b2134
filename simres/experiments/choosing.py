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
from simres.metrics.directions import direction
from simres.scenario.objectives import DEFAULT_PRIMARY

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

RULE_METRIC = "tries_per_request"
"""The second key of the rule that picks within the indistinguishable set: the least retry load."""

RULE = ("the best pessimistic end of the objective's interval (the best worst case), then the fewest tries "
        "per request (the least load the setting adds to its dependencies), then the first in the sweep's order")
"""How :func:`best` picks among the settings that are statistically indistinguishable from the best mean."""

CORRECTION = "Holm"
"""The multiple-comparison correction over the paired tests of the runners-up against the best mean."""

BOOTSTRAP = 4000
"""Bootstrap resamples of the replicates for the interval of a tail percentile."""


def is_tail(metric: str) -> bool:
    """Whether a metric is a tail statistic (p99, p99.9, max), whose interval is bootstrapped."""
    base = metric.split(":", 1)[0]
    return base.startswith("latency") and base.endswith(("p99", "p999", "max"))


def bootstrap_mean_ci(values: np.ndarray, *, confidence: float = 0.95, resamples: int = BOOTSTRAP,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean over replicates (NaN with fewer than two).

    A per-replicate p99 is itself a tail statistic with a skewed sampling distribution, so a
    Student t interval on it can be too narrow on the long side; resampling whole
    replicates keeps each one's tail intact and needs no normality. Seeded: same input,
    same interval.
    """
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    a = (1 - confidence) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN): controls the family-wise error rate."""
    import numpy as np

    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.where(~np.isnan(p))[0]
    if not len(idx):
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


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
    """The chosen setting of a sweep and how it compares with the others (see :func:`best`)."""

    objective: str
    maximize: bool
    constraints: tuple[Constraint, ...]
    conservative: bool
    confidence: float
    table: pd.DataFrame = field(repr=False)
    """One row per configuration, the chosen one first, then feasible ones by rank: parameters,
    variant, ``n``, ``errors``, ``feasible``, ``violates``, ``<metric>_mean/_lo/_hi`` for the
    objective and constrained metrics (tail percentiles: bootstrap interval), ``rank`` (by mean
    objective), ``diff`` (vs the best mean) with ``diff_lo``/``diff_hi``, ``p_value`` (paired
    t-test over replicates), ``p_holm`` (Holm-adjusted), ``significant``, ``tied``
    (indistinguishable from the best mean) and ``chosen``."""
    winner: dict[str, Any]
    overrides: dict[str, Any]
    command: str
    top: int = 5
    params: tuple[str, ...] = ()
    no_effect: tuple[str, ...] = ()
    """One sentence per swept parameter that has no measurable effect on the objective."""

    @property
    def yaml(self) -> str:
        """A YAML snippet: the winner as a scenario variant named ``best``."""
        return yaml.safe_dump({"variants": {"best": self.overrides}}, sort_keys=False)

    @property
    def tied(self) -> pd.DataFrame:
        """The settings statistically indistinguishable from the best mean (the chosen one among them)."""
        return self.table[self.table["tied"]]

    def __str__(self) -> str:
        t, obj = self.table, self.objective
        where = "the pessimistic CI bound" if self.conservative else "the mean"
        subject = " and ".join(map(str, self.constraints)) or "no constraint"
        n_ok, n_err = int(t.feasible.sum()), int((t.errors > 0).sum())
        pct = round(self.confidence * 100)
        lines = [f"{'maximize' if self.maximize else 'minimize'} {obj} subject to {subject} "
                 f"(constraints on {where})",
                 f"{len(t)} configurations: {n_ok} feasible, {len(t) - n_ok - n_err} violate a "
                 f"constraint, {n_err} had error rows"]
        tied = self.tied
        cols = [*self.winner]
        k = int(t.feasible.sum()) - 1
        if len(tied) > 1:
            lines += ["", f"{len(tied)} settings are statistically indistinguishable from the best mean "
                          f"(paired t-tests over replicates, {CORRECTION}-corrected over {k} comparisons, "
                          f"{pct}% level):"]
            lines += self._rows(tied.sort_values("rank", kind="stable"), cols, holm_col=True)
            lines += ["", f"chosen among them by rule: {RULE}:"]
        else:
            lines += ["", f"best (every other feasible setting is significantly worse, {CORRECTION}-corrected):"
                      if k > 0 else "best:"]
        w = t.iloc[0]
        width = max((len(k) for k in [*self.winner, obj, *(c.metric for c in self.constraints)]), default=8)
        for key, v in self.winner.items():
            lines.append(f"  {key:<{width}}  {self._value(key, v, tied)}")
        for m in dict.fromkeys([obj, *(c.metric for c in self.constraints)]):
            how = "bootstrap" if is_tail(m) else "t"
            lines.append(f"  {m:<{width}}  {_fmt_ci(w[f'{m}_mean'], w[f'{m}_lo'], w[f'{m}_hi'])}  "
                         f"{pct}% CI ({how}) [{_fmt_num(w[f'{m}_lo'])}, {_fmt_num(w[f'{m}_hi'])}]  (n={int(w.n)})")
        for sentence in self.no_effect:
            lines.append(f"no measurable effect: {sentence}")
        rest = t[t.feasible & ~t["tied"]].sort_values("rank", kind="stable").head(self.top)
        if len(rest):
            lines += ["", f"significantly worse than the best mean (difference in {obj}, paired over replicates):"]
            lines += self._rows(rest, cols, holm_col=True)
        lines += ["", "reproduce:", f"  {self.command}", "", "or add this variant to the scenario:"]
        lines += ["  " + ln for ln in self.yaml.rstrip().splitlines()]
        return "\n".join(lines)

    def _rows(self, part: pd.DataFrame, cols: list[str], *, holm_col: bool) -> list[str]:
        obj = self.objective
        pct = round(self.confidence * 100)
        rows = [["#", *cols, obj, "diff", f"{pct}% CI", "p", f"p ({CORRECTION})"]]
        for _, rd in part.iterrows():
            diff = "best mean" if rd["diff"] == 0 and rd["rank"] == 1 else _fmt_num(rd["diff"], sign=True)
            ci = "" if diff == "best mean" else (f"[{_fmt_num(rd['diff_lo'], sign=True)}, "
                                                  f"{_fmt_num(rd['diff_hi'], sign=True)}]")
            label = [str(int(rd["rank"]))] + [_show(rd[c]) if c in rd else _show(rd.get("variant")) for c in cols]
            rows.append([*label, _fmt_ci(rd[f"{obj}_mean"], rd[f"{obj}_lo"], rd[f"{obj}_hi"]), diff, ci,
                         _fmt_num(rd["p_value"]), _fmt_num(rd["p_holm"])])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return ["  " + "  ".join(c.ljust(wd) for c, wd in zip(row, widths, strict=True)).rstrip() for row in rows]

    def _value(self, key: str, value: Any, tied: pd.DataFrame) -> str:
        """A chosen parameter at the precision the tie set supports: ``0.06 (tried 0.0609003; ...)``."""
        if key not in tied.columns or len(tied) < 2 or not _numeric(value):
            return _show(value)
        vals = [float(v) for v in tied[key] if _numeric(v)]
        lo, hi = min(vals), max(vals)
        if lo == hi:
            return _show(value)
        short = _shortest_within(float(value), lo, hi)
        if float(short) == float(value):
            return f"{_show(value)} (indistinguishable from {_fmt_num(lo)} to {_fmt_num(hi)})"
        return f"{short} (tried {_show(value)}; every tried value from {_fmt_num(lo)} to {_fmt_num(hi)} is " \
               "indistinguishable)"


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def _shortest_within(x: float, lo: float, hi: float) -> str:
    """``x`` with the fewest significant digits that still lies in ``[lo, hi]``."""
    for digits in range(1, 7):
        text = f"{x:.{digits}g}"
        if lo <= float(text) <= hi:
            return text
    return f"{x:.6g}"


def _fmt_ci(mean: Any, lo: Any, hi: Any) -> str:
    """A mean to the precision its interval supports: two significant digits of the half-width."""
    mean, lo, hi = float(mean), float(lo), float(hi)
    if math.isnan(mean):
        return "-"
    hw = (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else float("nan")
    if not math.isfinite(hw) or hw <= 1e-12 * max(abs(mean), 1e-300):
        return _fmt_num(mean)
    decimals = max(0, 1 - math.floor(math.log10(hw)))
    return f"{mean:.{decimals}f}"


def _choose(configs: pd.DataFrame, objective: str, maximize: bool, cons: Sequence[Constraint],
            conservative: bool) -> Any:
    """The index of the chosen configuration: :data:`RULE` applied to the tied set."""
    tied = configs[configs["tied"]]
    tries = tied.get(f"{RULE_METRIC}_mean", 0.0)
    pessimistic = -tied[f"{objective}_lo"] if maximize else tied[f"{objective}_hi"]
    key = tied.assign(_tries=tries, _pess=pessimistic.fillna(math.inf))
    return key.sort_values(["_pess", "_tries", "_order"], kind="stable").index[0]


def no_effect(ok: pd.DataFrame, params: Sequence[str], objective: str, *, confidence: float = 0.95) -> tuple[str, ...]:
    """A sentence per swept parameter whose values cannot be told apart on ``objective``.

    Within every combination of the other parameters (and variant), each value is compared
    with the best of that group by a paired t-test over replicates, Holm-corrected per
    group; a parameter none of whose comparisons is significant has no measurable effect.
    Identical results in every replicate are said as such (with the reason when the
    retries never fired).
    """
    import numpy as np

    from simres.metrics.stats import paired_difference

    out = []
    for p in params:
        if ok[p].astype(str).nunique() < 2:
            continue
        others = [q for q in (*params, "variant") if q != p and q in ok.columns]
        identical, significant, compared = True, False, False
        for _, part in (ok.groupby([ok[q].astype(str) for q in others], sort=False) if others else [(None, ok)]):
            wide = part.pivot_table(index="replicate", columns=part[p].astype(str), values=objective,
                                    aggfunc="first")
            if wide.shape[1] < 2:
                continue
            compared = True
            arr = wide.to_numpy(float)
            if not np.allclose(arr, arr[:, :1], rtol=0, atol=0, equal_nan=True):
                identical = False
            if len(wide) < 2:
                significant = significant or not identical
                continue
            means = wide.mean()
            ref = wide[means.idxmax()]
            pv = []
            for c in wide.columns:
                if wide[c].equals(ref):
                    continue
                pv.append(paired_difference(wide[c].to_numpy(float), ref.to_numpy(float)).p_value)
            if pv and (holm(np.asarray(pv)) < 1 - confidence).any():
                significant = True
        if not compared:  # no two values of p share the other parameters (a sampled or tuned design): no verdict
            continue
        if identical:
            why = ""
            if RULE_METRIC in ok.columns and (ok[RULE_METRIC] <= 1 + 1e-9).all():
                why = f"; retries never fired ({RULE_METRIC} <= 1 in every run)"
            out.append(f"{p}: every value gives identical {objective} in every replicate{why}")
        elif not significant:
            out.append(f"{p}: no value differs significantly from the best in its group ({CORRECTION}-corrected "
                       f"paired t-tests, {round(confidence * 100)}% level)")
    return tuple(out)


def best(results: pd.DataFrame | str | os.PathLike[str], *, minimize: str | None = None,
         maximize: str | None = None, subject_to: Sequence[str | Constraint] = (),
         conservative: bool = False, confidence: float = 0.95, top: int = 5) -> Choice:
    """Choose the best configuration of a sweep under constraints.

    Replications are aggregated per configuration (parameters + variant). A configuration
    is feasible when every constraint holds on its mean (``conservative=True``: on the
    pessimistic end of its confidence interval) and none of its points ended in an error;
    the feasible one with the best mean objective wins. Runners-up are compared with it by
    a paired t-test over replicates, which share seeds (common random numbers). With neither
    ``minimize`` nor ``maximize``, the objective is the swept scenario's ``objective:``
    (its ``primary`` metric, and its ``subject_to`` constraints added to ``subject_to``),
    recorded in the results' manifest; results without one use the highest success rate.

    Raises:
        SweepError: a bad argument (unknown metric, malformed constraint).
        NoFeasibleSetting: no configuration satisfies the constraints.
    """
    import numpy as np
    import pandas as pd

    from simres.metrics.stats import aggregate_replications, paired_difference

    df = results if isinstance(results, pd.DataFrame) else load_results(results)
    meta = df.attrs.get("sweep") or {}
    if minimize is not None and maximize is not None:
        raise SweepError("objective: give exactly one of --minimize METRIC or --maximize METRIC")
    declared = meta.get("objective") or {}
    if minimize is None and maximize is None:
        # No objective given: the swept scenario's own `objective:` (its primary metric and its
        # constraints), else the default of every scenario, the highest success rate.
        primary = str(declared.get("primary") or DEFAULT_PRIMARY)
        if direction(primary) == "lower":
            minimize = primary
        else:
            maximize = primary
        subject_to = (*[str(c) for c in declared.get("subject_to", [])], *subject_to)
    objective = str(minimize or maximize)
    way = direction(objective)
    if way is None:
        raise SweepError(f"objective: '{objective}' describes load and has no better direction "
                         "(simres.metrics.directions); use it in --subject-to, not as the objective")
    if (way == "lower") != (minimize is not None):
        flag = "--minimize" if way == "lower" else "--maximize"
        raise SweepError(f"objective: {way} is better for '{objective}' (simres.metrics.directions); use {flag}")
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
    if RULE_METRIC in df.columns and RULE_METRIC not in needed:
        needed.append(RULE_METRIC)
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
        if is_tail(m):
            cis = {cfg: bootstrap_mean_ci(part[m].to_numpy(float), confidence=confidence)
                   for cfg, part in ok.groupby("_cfg", sort=False)}
            configs[f"{m}_lo"] = [cis.get(c, (np.nan, np.nan))[0] for c in configs.index]
            configs[f"{m}_hi"] = [cis.get(c, (np.nan, np.nan))[1] for c in configs.index]
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
    configs.loc[win_cfg, ["diff_lo", "diff_hi", "p_value"]] = np.nan
    feas = configs["feasible"] & (configs.index != win_cfg)
    configs["p_holm"] = np.nan
    configs.loc[feas, "p_holm"] = holm(configs.loc[feas, "p_value"].to_numpy(float))
    configs["significant"] = configs["p_holm"] < 1 - confidence
    same = feas & configs["diff"].eq(0) & configs["p_value"].isna()
    configs["tied"] = (feas & ~configs["significant"] & configs["p_holm"].notna()) | same
    configs.loc[win_cfg, "tied"] = True
    configs["chosen"] = False
    configs.loc[_choose(configs, objective, maximize is not None, cons, conservative), "chosen"] = True
    configs = pd.concat([configs[configs["chosen"]], configs[~configs["chosen"]]])
    table = configs.drop(columns=["_order", "_key"]).reset_index(drop=True)
    dtypes = meta.get("dtypes", {})
    winner = {p: decode_param(table.at[0, p], dtypes[p]) if p in dtypes else _plain(table.at[0, p])
              for p in params}
    variant = str(table.at[0, "variant"])
    overrides = {**meta.get("overrides", {}), **meta.get("variant_overrides", {}).get(variant, {}), **winner}
    if variant or len(meta.get("variants", [])) > 1:
        winner["variant"] = variant or "(as written)"
    effects = no_effect(ok, params, objective, confidence=confidence)
    return Choice(objective, maximize is not None, cons, conservative, confidence, table,
                  winner, overrides, _command(meta, variant, winner, params), top, params=tuple(params),
                  no_effect=effects)


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
