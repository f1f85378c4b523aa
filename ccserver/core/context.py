"""What one turn needs from the server, as one frozen value.

The gateway builds a `TurnServices` once the CLI is found (without a CLI no turn can
run, so there is nothing to build) and hands it to `open_turn`. Core code sees these
services and nothing else of the gateway: not the routes, the stats or the cache.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ccproto import PlanOptions

from ..conversations.records import Records
from ..conversations.registry import Conversations
from ..pool.admission import Admission
from ..pool.pool import Pool
from ..proc.reading import RunLimits
from ..settings import Settings
from .retry import RetryPolicy

__all__ = ["TurnServices"]


@attrs.frozen(kw_only=True)
class TurnServices:
    #: The server's settings (images, file access: what a request may use).
    settings: Settings
    #: The environment the CLI inherits.
    environ: Mapping[str, str]
    #: How every CLI run is planned (the CLI's path, models, tools, options).
    options: PlanOptions
    #: Deadlines and sizes of one CLI run.
    limits: RunLimits
    #: Which failed starts are tried again, and how long to wait before.
    retry: RetryPolicy
    #: Which process serves a turn.
    pool: Pool
    #: The cap on running turns and its queue.
    admission: Admission
    #: Which conversation a request continues, one turn at a time.
    conversations: Conversations
    #: The conversations' records: made, completed, rolled back or removed.
    records: Records
