"""What several gateways share through one Redis (or Valkey): the connection, bridged from
Trio with trio-asyncio, and the cluster's view of its gateways."""

from __future__ import annotations

__all__ = ["KEY_PREFIX"]

#: Every key the gateways share starts with this.
KEY_PREFIX = "ccs:"
