"""Write one call's policy stack in a library's own configuration format (``simres export-config``).

Pure functions: a resolved :class:`~simres.scenario.services.CallPolicy` in, text and the list
of settings the library cannot express out. One mapper per library (:mod:`.pylibs`,
:mod:`.frameworks`, :mod:`.mesh`); :mod:`._common` holds the guard that names every setting a
mapper did not map, so nothing is dropped silently. Counting rules and units follow
``docs/policies.md`` (see ``docs/export.md``). It may import only the foundations and
:mod:`simres.policies` (the configs and presets it reads); never SimPy, the scenario (a call is
any object with the CallPolicy fields), the model, experiments or the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from simres.export import frameworks, mesh, pylibs
from simres.export._common import Exported, Mapping, NothingToExport

__all__ = ["LIBRARIES", "Exported", "NothingToExport", "call_policies", "export_call", "has_policy"]

LIBRARIES: dict[str, tuple[Callable[[Mapping], Any], str, str]] = {
    # name: (mapper, language of the text, what it writes)
    "resilience4j": (frameworks.resilience4j, "yaml", "Spring Boot application.yml (resilience4j.*.instances)"),
    "polly": (frameworks.polly, "json", "Polly v8 strategy options, one section per strategy"),
    "envoy": (mesh.envoy, "yaml", "Envoy v3 cluster and route"),
    "istio": (mesh.istio, "yaml", "Istio VirtualService and DestinationRule"),
    "botocore": (pylibs.botocore, "python", "botocore.config.Config"),
    "urllib3": (pylibs.urllib3, "python", "urllib3.Retry and Timeout"),
    "pybreaker": (pylibs.pybreaker, "python", "pybreaker.CircuitBreaker"),
    "tenacity": (pylibs.tenacity, "python", "tenacity.Retrying"),
    "grpc": (mesh.grpc, "json", "gRPC service config (methodConfig, retryThrottling)"),
}
"""Every library ``export-config`` writes, with its mapper, output language and a description."""

POLICY_FIELDS = ("timeout", "deadline", "retry", "breaker", "bulkhead", "limit", "outlier_detection", "hedge")


def has_policy(call: Any) -> bool:
    """Whether a call (or client) sets any resilience policy."""
    return any(getattr(call, k, None) is not None for k in POLICY_FIELDS)


def call_policies(scenario: Any) -> dict[str, tuple[str, Any]]:
    """Every call of a scenario by ``CALLER->TARGET`` (a named call: ``CALLER->NAME``): (target, policy).

    Clients come first (``web->api``), then each service's handler calls in order.
    """
    out: dict[str, tuple[str, Any]] = {}
    for name, client in scenario.clients.items():
        out[f"{name}->{client.target}"] = (client.target, client)
    for name, service in scenario.services.items():
        for i, call in enumerate(service.handler.calls):
            out[f"{name}->{service.handler.ref(i)}"] = (call.to, call)
    return out


def export_call(policy: Any, library: str, *, instance: str = "backend",
                header: Sequence[str] = ()) -> Exported:
    """``policy`` (a CallPolicy, a downstream call or a client) in ``library``'s format.

    ``instance`` names the library object (the Resilience4j instance, the Envoy cluster, the
    gRPC service); ``header`` lines open the output as comments (a ``_comment`` list in JSON).

    Raises:
        KeyError: an unknown library.
        NothingToExport: the call has nothing in the library's domain.
    """
    mapper, language, _ = LIBRARIES[library]
    m = Mapping(policy, library)
    m.instance = instance
    body = mapper(m)
    notes = m.leftovers()
    lines = list(header)
    if notes:
        lines += [""] if lines else []
        lines += [f"Not expressible in {library} (left out or approximated as said):"]
        lines += [f"  - {n}" for n in notes]
    if language == "json":
        text = json.dumps({"_comment": lines, **body}, indent=2, ensure_ascii=False) + "\n"
    else:
        text = "".join(f"# {ln}".rstrip() + "\n" for ln in lines) + ("\n" if lines else "") + body
    return Exported(library, text, notes, language)
