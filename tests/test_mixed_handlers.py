"""Handlers that mix sequential and parallel steps (``handler.steps``): timing, failures, the try tree.

Every service takes a constant time and the network is instantaneous, so a request's
latency is exactly the sum over steps of the slowest call in each step.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import simres
from simres.errors import ScenarioError
from simres.scenario.loading import load_scenario

TIMES = {"auth": 0.01, "payments": 0.05, "inventory": 0.03, "recommendations": 0.02}


def _shop(steps: Any = None, *, mode: str | None = None, calls: list[dict[str, Any]] | None = None,
          **svc: dict[str, Any]) -> dict[str, Any]:
    """An api that calls four dependencies of known constant service times, one request every 0.5 s."""
    handler: dict[str, Any] = {"calls": calls if calls is not None else [{"to": n} for n in TIMES]}
    if steps is not None:
        handler["steps"] = steps
    if mode is not None:
        handler["mode"] = mode
    services: dict[str, Any] = {
        "api": {"workers": 4, "service_time": 0.0, "handler": handler},
        **{n: {"workers": 4, "service_time": t, **svc.get(n, {})} for n, t in TIMES.items()},
    }
    return {
        "name": "shop", "duration": 5, "drain": 2, "seed": 3,
        "network": {"default": {"latency": 0.0}},
        "services": services,
        "clients": {"web": {"target": "api", "arrival": {"kind": "constant", "rate": 2.0}}},
    }


STEPS = ["auth", ["payments", "inventory"], "recommendations"]


def test_a_parallel_step_takes_its_slowest_call_and_steps_add() -> None:
    r = simres.run(_shop(STEPS))
    expected = 0.01 + max(0.05, 0.03) + 0.02
    assert len(r.requests) == 9  # one every 0.5 s over 5 s
    assert r.requests["outcome"].eq("ok").all()
    assert r.requests["latency"].to_numpy() == pytest.approx(expected, abs=1e-9)
    # and the parts: all sequential adds every call, all parallel takes the slowest
    seq = simres.run(_shop(mode="sequential")).requests["latency"]
    par = simres.run(_shop(mode="parallel")).requests["latency"]
    assert seq.to_numpy() == pytest.approx(sum(TIMES.values()), abs=1e-9)
    assert par.to_numpy() == pytest.approx(max(TIMES.values()), abs=1e-9)


def test_calls_of_a_step_start_together_and_the_next_step_waits_for_the_last() -> None:
    a = simres.run(_shop(STEPS)).attempts
    first = a[(a.request_id == a.request_id.min()) & (a.depth == 1)].set_index("service")
    start = first["start"]
    assert start["payments"] == start["inventory"] == pytest.approx(start["auth"] + 0.01)
    assert start["recommendations"] == pytest.approx(first.loc["payments", "end"])


def test_steps_in_calls_order_are_sequential_and_give_identical_frames() -> None:
    flat = simres.run(_shop(list(TIMES)))
    seq = simres.run(_shop(mode="sequential"))
    for name in ("requests", "attempts", "timeline"):
        pd.testing.assert_frame_equal(getattr(flat, name), getattr(seq, name))


def test_every_downstream_try_hangs_under_the_try_that_made_it() -> None:
    a = simres.run(_shop(STEPS)).attempts
    top = a[a.depth == 0].set_index("request_id")["try_id"]
    down = a[a.depth == 1]
    assert len(down) == 4 * len(top)
    assert (down["parent_try"].to_numpy() == top.loc[down["request_id"]].to_numpy()).all()
    assert (a[a.depth == 0]["parent_try"] == -1).all()
    assert down.groupby("request_id")["service"].nunique().eq(4).all()


def test_a_failed_critical_call_fails_the_request_its_step_finishes_and_later_steps_are_skipped() -> None:
    r = simres.run(_shop(STEPS, inventory={"error_rate": 1.0}))
    assert r.requests["outcome"].eq("error").all()
    a = r.attempts[r.attempts.depth == 1]
    counts = a["service"].value_counts()
    n = len(r.requests)
    assert counts["auth"] == counts["payments"] == counts["inventory"] == n  # the sibling still ran
    assert "recommendations" not in counts.index  # the next step was never made
    # the request waits for the whole step (payments is slower than the failed inventory)
    assert r.requests["latency"].to_numpy() == pytest.approx(0.01 + 0.05, abs=1e-9)


def test_a_failed_optional_call_degrades_and_later_steps_still_run() -> None:
    calls = [{"to": "auth"}, {"to": "payments"},
             {"to": "inventory", "critical": False, "fallback": {"latency": 0.1}}, {"to": "recommendations"}]
    r = simres.run(_shop(STEPS, calls=calls, inventory={"error_rate": 1.0}))
    assert r.requests["outcome"].eq("degraded").all()
    assert r.attempts[r.attempts.depth == 1]["service"].astype(str).value_counts().eq(len(r.requests)).all()
    # fallbacks are answered after the calls, as in sequential and parallel handlers
    assert r.requests["latency"].to_numpy() == pytest.approx(0.01 + 0.05 + 0.02 + 0.1, abs=1e-9)


def test_a_failed_critical_first_step_makes_no_other_call() -> None:
    r = simres.run(_shop(STEPS, auth={"error_rate": 1.0}))
    assert set(r.attempts[r.attempts.depth == 1]["service"]) == {"auth"}
    assert r.requests["outcome"].eq("error").all()


def test_a_named_override_reaches_a_call_inside_a_group() -> None:
    # payments times out at 20 ms (it takes 50): the group then ends with inventory (30 ms)
    r = simres.run(_shop(STEPS), overrides={"services.api.handler.calls.payments.timeout": 0.02})
    a = r.attempts[r.attempts.depth == 1]
    assert a.loc[a.service == "payments", "outcome"].eq("timeout").all()
    assert a.loc[a.service == "inventory", "outcome"].eq("ok").all()
    assert r.requests["outcome"].eq("error").all()
    assert r.requests["latency"].to_numpy() == pytest.approx(0.01 + 0.03, abs=1e-9)


def test_steps_use_call_names_for_repeated_targets() -> None:
    calls = [{"to": "auth"}, {"to": "payments", "name": "charge"}, {"to": "payments", "name": "refund_check"},
             {"to": "inventory"}, {"to": "recommendations"}]
    r = simres.run(_shop(["auth", ["charge", "refund_check", "inventory"], "recommendations"], calls=calls))
    assert r.requests["latency"].to_numpy() == pytest.approx(0.01 + 0.05 + 0.02, abs=1e-9)
    assert r.attempts[r.attempts.depth == 1]["service"].value_counts()["payments"] == 2 * len(r.requests)


@pytest.mark.parametrize(("steps", "extra", "expected"), [
    (["auth", ["payments", "inventry"], "recommendations"], {},
     "services.api.handler.steps.1.1: unknown call 'inventry', expected one of: auth, payments, inventory, "
     "recommendations (did you mean 'inventory'?)"),
    (["auth", ["payments", "inventory"]], {},
     "services.api.handler.steps: call 'recommendations' is in calls but in no step; list every call once"),
    (["auth", ["payments", "auth"], "inventory", "recommendations"], {},
     "services.api.handler.steps.1.1: 'auth' is already in steps.0; each call runs once"),
    (["auth", [], "payments", "inventory", "recommendations"], {},
     "services.api.handler.steps.1: a parallel group needs at least one call, got []"),
    (STEPS, {"mode": "parallel"},
     "services.api.handler.steps: give either mode: parallel or steps, not both (steps says what runs in parallel)"),
    (["auth", ["payments", ["inventory"]], "recommendations"], {},
     "services.api.handler.steps.1.1: must be a string, got ['inventory']"),
    (["auth", 3, "payments", "inventory", "recommendations"], {},
     "services.api.handler.steps.1: must be a call name or a list of call names (run in parallel), got 3"),
])
def test_bad_steps_are_one_line_naming_the_field(steps: Any, extra: dict[str, Any], expected: str) -> None:
    sc = _shop(steps, **({"mode": extra["mode"]} if extra else {}))  # type: ignore[arg-type]
    with pytest.raises(ScenarioError) as e:
        load_scenario(sc)
    assert str(e.value) == f"<mapping>: {expected}"


def test_repeated_target_needs_names_for_steps() -> None:
    calls = [{"to": "auth"}, {"to": "payments"}, {"to": "payments"}, {"to": "inventory"}, {"to": "recommendations"}]
    with pytest.raises(ScenarioError) as e:
        load_scenario(_shop(["auth", "payments", "inventory", "recommendations"], calls=calls))
    assert str(e.value) == ("<mapping>: services.api.handler.calls: calls 1 and 2 are both named 'payments'; "
                            "steps names calls, so give one of them a unique name:")


def test_preflight_holding_time_follows_the_steps() -> None:
    from simres.scenario.preflight import holding_times

    h = holding_times(load_scenario(_shop(STEPS)))
    assert h["api"] == pytest.approx(0.01 + 0.05 + 0.02)


@pytest.mark.parametrize(("on_gone", "made"), [("continue", True), ("cancel", False)])
def test_no_new_step_starts_once_the_caller_is_gone_with_cancel(on_gone: str, made: bool) -> None:
    sc = _shop(STEPS)
    sc["services"]["api"]["on_caller_gone"] = on_gone
    sc["clients"]["web"]["timeout"] = 0.03  # gives up during the parallel step (which ends at 0.06)
    r = simres.run(sc)
    assert r.requests["outcome"].eq("timeout").all()
    services = set(r.attempts.loc[r.attempts.depth == 1, "service"].astype(str))
    assert ("recommendations" in services) is made
    assert {"auth", "payments", "inventory"} <= services


def test_a_mixed_handler_is_deterministic_and_its_streams_do_not_depend_on_the_steps() -> None:
    sc = _shop(STEPS)
    sc["services"]["payments"]["service_time"] = {"kind": "exponential", "mean": 0.05}
    a, b = simres.run(sc), simres.run(sc)
    pd.testing.assert_frame_equal(a.attempts, b.attempts)
    # a call's random streams are keyed by the call, not by the step it is in: payments
    # draws the same service times whether it runs alone or in a group
    seq = simres.run({**sc, "services": {**sc["services"], "api": {
        **sc["services"]["api"], "handler": {"calls": sc["services"]["api"]["handler"]["calls"]}}}})
    pay = [x.attempts.loc[x.attempts.service == "payments"] for x in (a, seq)]
    served = [(p["end"] - p["service_start"]).to_numpy() for p in pay]
    assert served[0] == pytest.approx(served[1])
