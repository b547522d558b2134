"""The network: directed links between nodes, with latency, loss and fault state.

A node is a client population name, a service name, or one instance ``service/i``. Each
(caller node, callee instance) pair gets two :class:`Link` objects, one per direction, so a
partition or latency fault can target a single instance or a single direction. A link
that is partitioned or loses a message returns ``None``: the caller only finds out by
timing out, as on a real network.
"""

from __future__ import annotations

from collections.abc import Iterable

from simres.dists import Constant
from simres.rng import stream, uniform_sampler
from simres.scenario.network import LinkConfig, NetworkConfig


class Link:
    """One direction between two nodes. ``delay()`` is on the per-message hot path."""

    __slots__ = ("add", "blocked", "dst_names", "loss", "mult", "sample", "src_names", "u")

    def __init__(self, src_names: frozenset[str], dst_names: frozenset[str], sample, loss: float, u):
        self.src_names = src_names
        self.dst_names = dst_names
        self.sample = sample  # None for a constant-zero latency: no draw at all
        self.loss = loss
        self.u = u
        self.blocked = 0  # number of active partitions covering this link
        self.add = 0.0
        self.mult = 1.0

    def delay(self) -> float | None:
        """Latency of one message, or None if it is lost (partition or random loss)."""
        if self.blocked:
            return None
        if self.loss and self.u() < self.loss:
            return None
        if self.sample is None:
            return self.add
        return self.sample() * self.mult + self.add

    def matches(self, src: Iterable[str], dst: Iterable[str]) -> bool:
        """Whether this link goes from any node in ``src`` to any node in ``dst``."""
        return not self.src_names.isdisjoint(src) and not self.dst_names.isdisjoint(dst)


def _names(node: str) -> frozenset[str]:
    """A node answers to its own name and, for ``svc/i``, to the service name too."""
    base = node.split("/")[0]
    return frozenset({node, base})


class Network:
    """Creates and remembers links; faults look them up by node names."""

    def __init__(self, cfg: NetworkConfig, seed: int):
        self.cfg = cfg
        self.seed = seed
        self.links: list[Link] = []

    def _config_for(self, src: str, dst: str) -> tuple[object, float]:
        src_n, dst_n = _names(src), _names(dst)
        best: LinkConfig | None = None
        for link in self.cfg.links:
            fwd = link.from_ in src_n and link.to in dst_n
            rev = link.symmetric and link.from_ in dst_n and link.to in src_n
            # the most specific match (instance-level beats service-level) wins
            if (fwd or rev) and (best is None or ("/" in link.from_ + link.to) > ("/" in best.from_ + best.to)):
                best = link
        if best is None:
            return self.cfg.default.latency, self.cfg.default.loss
        return best.latency, best.loss

    def link(self, src: str, dst: str, key: str | None = None) -> Link:
        """A new link from node ``src`` to node ``dst`` with its own random streams.

        ``key`` is the link's full identity for its streams (default ``src->dst``): the
        members of one client population share a node name (faults address them together)
        but each draws its own delays, so their call sites pass ``web#3->api/0``.
        """
        dist, loss = self._config_for(src, dst)
        zero = isinstance(dist, Constant) and dist.value == 0.0
        ident = f"link:{key or f'{src}->{dst}'}"
        sample = None if zero else dist.sampler(stream(self.seed, ident, "latency"))  # type: ignore[attr-defined]
        u = uniform_sampler(stream(self.seed, ident, "loss")) if loss else None
        lk = Link(_names(src), _names(dst), sample, loss, u)
        self.links.append(lk)
        return lk

    def find(self, src: Iterable[str], dst: Iterable[str], *, both_ways: bool) -> list[Link]:
        """Links from ``src`` nodes to ``dst`` nodes (and back, if ``both_ways``)."""
        s, d = set(src), set(dst)
        out = [lk for lk in self.links if lk.matches(s, d)]
        if both_ways:
            out += [lk for lk in self.links if lk.matches(d, s) and lk not in out]
        return out
