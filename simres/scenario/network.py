"""The network section: a default link and named links with latency and loss.
"""

from __future__ import annotations

from pydantic import Field

from simres.dists import Dist
from simres.scenario._base import _Model

# ---------------------------------------------------------------------------- network


class LinkDefaults(_Model):
    """Latency and loss of every pair of nodes not listed in ``network.links``."""

    latency: Dist = Field(default=0.0, description="One-way message latency (seconds).")
    loss: float = Field(default=0.0, ge=0, le=1, description="Probability a message is lost.")


class LinkConfig(_Model):
    """A network link between two named nodes (a client, a service, or ``service/i``)."""

    from_: str = Field(alias="from", description="Sending node: client or service name.")
    to: str = Field(description="Receiving node: service name (or client name for replies).")
    latency: Dist = Field(default=0.0, description="One-way message latency (seconds).")
    loss: float = Field(default=0.0, ge=0, le=1, description="Probability a message is lost.")
    symmetric: bool = Field(default=True, description="Also use this link for the reverse direction.")


class NetworkConfig(_Model):
    """The network: a default link and named overrides."""

    default: LinkDefaults = Field(default_factory=LinkDefaults, description="Link for unlisted pairs.")
    links: list[LinkConfig] = Field(default_factory=list, description="Links that differ from the default.")
