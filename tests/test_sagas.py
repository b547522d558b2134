"""Sagas: forward steps, compensations in reverse order, the saga events and summary keys, schema errors."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from simpy import Environment

from simres.metrics.recorder import Recorder
from simres.model.job import INF
from simres.model.saga import run_saga
from simres.outcomes import ERROR, OK, TIMEOUT
from simres.scenario.schema import Scenario


class FakeSite:
    """A call that takes ``latency`` and answers the next of ``outcomes``; logs its calls in ``log``."""

    def __init__(self, env: Environment, name: str, log: list[str], *outcomes: str, latency: float = 1.0) -> None:
        self.env = env
        self.name = name
        self.log = log
        self.outcomes = list(outcomes) or [OK]
        self.latency = latency

    def call(self, req_id: int, priority: str, parent_deadline: float = INF, parent: int = -1
             ) -> Generator[Any, Any, tuple[str, int]]:
        self.log.append(self.name)
        yield self.env.timeout(self.latency)
        return (self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]), 2


def saga(env: Environment, log: list[str], fail_at: str | None = None, undo_fails: str | None = None
         ) -> list[tuple[str, Any, Any]]:
    steps = []
    for name in ("reserve", "charge", "ship"):
        fwd = FakeSite(env, name, log, ERROR if name == fail_at else OK)
        undo = None if name == "ship" else FakeSite(env, f"undo-{name}", log, TIMEOUT if name == undo_fails else OK)
        steps.append((name, fwd, undo))
    return steps


def drive(steps: list[tuple[str, Any, Any]], env: Environment) -> tuple[tuple[str, int], Recorder]:
    rec = Recorder()
    out: list[tuple[str, int]] = []

    def proc() -> Generator[Any, Any, None]:
        out.append((yield from run_saga(rec, "shop", steps, 7, "high")))  # type: ignore[arg-type]

    env.process(proc())
    env.run()
    return out[0], rec


def test_a_completed_saga_runs_every_step_and_no_compensation() -> None:
    env, log = Environment(), []
    (outcome, tries), rec = drive(saga(env, log), env)
    assert (outcome, tries) == (OK, 6)
    assert log == ["reserve", "charge", "ship"]
    ev = rec.events_frame()
    assert list(ev["kind"]) == ["saga_partial", "saga_completed"]
    assert list(ev["time"]) == [1.0, 3.0]
    assert list(ev["value"]) == [7.0, 7.0]


def test_a_failed_step_compensates_the_done_steps_in_reverse_order() -> None:
    env, log = Environment(), []
    (outcome, tries), rec = drive(saga(env, log, fail_at="ship"), env)
    assert outcome == ERROR  # the failing step's outcome
    assert tries == 6
    assert log == ["reserve", "charge", "ship", "undo-charge", "undo-reserve"]
    ev = rec.events_frame()
    assert list(ev["kind"]) == ["saga_partial", "saga_compensated"]
    assert list(ev["detail"]) == ["reserve", "ship"]
    assert ev["time"].iloc[-1] == 5.0


def test_a_failed_compensation_leaves_the_saga_inconsistent_and_the_rest_still_run() -> None:
    env, log = Environment(), []
    _, rec = drive(saga(env, log, fail_at="ship", undo_fails="charge"), env)
    assert log[-2:] == ["undo-charge", "undo-reserve"]
    assert list(rec.events_frame()["kind"]) == ["saga_partial", "saga_inconsistent"]


def test_a_failed_first_step_has_nothing_to_undo() -> None:
    env, log = Environment(), []
    (outcome, _), rec = drive(saga(env, log, fail_at="reserve"), env)
    assert outcome == ERROR and log == ["reserve"]
    assert list(rec.events_frame()["kind"]) == ["saga_compensated"]


BASE: dict[str, Any] = {
    "name": "s", "duration": 10, "warmup": 1,
    "services": {"inv": {"service_time": 0.01}, "pay": {"service_time": 0.01}},
    "clients": {"shop": {"target": "inv", "arrival": {"kind": "poisson", "rate": 5}, "workflow": "saga",
                         "saga": {"steps": [{"name": "reserve", "to": "inv", "compensate": {"to": "inv"}},
                                            {"name": "charge", "to": "pay", "retry": {"max_attempts": 2}}]}}},
}


def with_client(**changes: Any) -> dict[str, Any]:
    client = {**BASE["clients"]["shop"], **changes}
    return {**BASE, "clients": {"shop": client}}


@pytest.mark.parametrize(("client", "message"), [
    ({"saga": None}, "saga: workflow: saga needs saga"),
    ({"workflow": "call"}, "saga: only with workflow: saga"),
    ({"saga": {"steps": [{"name": "a", "to": "nope"}]}}, "clients.shop.saga.steps.0.to: unknown service 'nope'"),
    ({"saga": {"steps": [{"name": "a", "to": "inv", "compensate": {"to": "pya"}}]}},
     "clients.shop.saga.steps.0.compensate.to: unknown service 'pya'"),
    ({"saga": {"steps": [{"name": "a", "to": "inv"}, {"name": "a", "to": "pay"}]}}, "repeated: a"),
    ({"saga": {"steps": []}}, "steps"),
    ({"retry": {"max_attempts": 2}}, "retry: a saga client's policies go on its steps"),
])
def test_schema_errors_name_the_field(client: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        Scenario.model_validate(with_client(**client))


def test_a_saga_scenario_runs_and_summarises() -> None:
    from simres.experiments.runs import run
    sc = Scenario.model_validate(BASE)
    res = run(sc, seed=1)
    s = res.summary
    assert s["sagas_completed"] == 1.0 and s["sagas_inconsistent"] == 0.0
    assert 0 < s["saga_partial_time_p50"] < 0.1
    assert np.isfinite(s["saga_partial_time_p99"])
    assert set(res.attempts["service"].astype(str)) == {"inv", "pay"}
    assert "saga" not in Scenario.model_validate({**BASE, "clients": {"c": {
        "target": "inv", "arrival": {"kind": "poisson", "rate": 1}}}}).model_dump()["clients"]["c"]


def test_a_step_breaker_gets_breaker_keys() -> None:
    from simres.experiments.runs import breaker_links
    data = with_client(saga={"steps": [{"name": "a", "to": "inv", "breaker": {},
                                        "compensate": {"to": "pay", "breaker": {}}}]})
    assert breaker_links(Scenario.model_validate(data)) == {"shop->inv", "shop->pay"}


def test_preflight_counts_every_step_at_its_service() -> None:
    from simres.scenario.preflight import arrival_rates
    sc = Scenario.model_validate(BASE)
    assert arrival_rates(sc) == {"inv": 5.0, "pay": 5.0}
    assert arrival_rates(sc, worst=True) == {"inv": 5.0, "pay": 10.0}
