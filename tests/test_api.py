"""The public Python API: names, and that importing submodules never shadows them."""

from __future__ import annotations

import importlib

import simres

SMALL = {"duration": 5, "services": {"a": {}}, "clients": {"c": {"target": "a", "arrival": {"kind": "poisson",
                                                                                         "rate": 5}}}}


def test_every_public_name_resolves() -> None:
    for name in simres.__all__:
        assert getattr(simres, name) is not None, name


def test_functions_survive_importing_every_submodule() -> None:
    import pkgutil

    for info in pkgutil.walk_packages(simres.__path__, "simres."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    for name in ("run", "sweep", "compare", "replicate", "load_results", "best", "load_scenario", "build_report"):
        assert callable(getattr(simres, name)) and not isinstance(getattr(simres, name), type(simres)), name
    first = simres.run(SMALL, seed=3)
    second = simres.run(SMALL, seed=3)
    assert first.requests.equals(second.requests)


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        simres.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
