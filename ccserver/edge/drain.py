"""The end of a graceful shutdown's grace, as one server-wide signal the surfaces watch.

Theory of operation. On SIGINT/SIGTERM ccserver.serve stops taking connections and gives
in-flight requests ``server.graceful_timeout_seconds``; when that runs out it calls
`Drain.cut`, and only a short while later does Hypercorn cancel what is still running. In
between, each surface ends what it has open in its own words instead of being cancelled
mid-body: a turn's events (`guard`) end in a `TurnFailed` carrying `ShuttingDown`, which
the SSE surfaces render as their usual mid-stream error (chat: an error event and
``[DONE]``; Responses: ``response.failed``) or, before a stream is committed, as a 503; a
WebSocket waits on `wait_cut` and closes with 1001 (going away).

The cut is by cancel scope, one per pending receive: it interrupts a wait for the CLI's
next event, never a write, so the final frame goes out uncancelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ccproto import TurnEvent, TurnFailed

from ..errors import ShuttingDown

__all__ = ["Drain"]


class Drain:
    """Set once, when the shutdown grace runs out; never reset (a server drains once)."""

    def __init__(self) -> None:
        self._cut = trio.Event()
        self._waits: set[trio.CancelScope] = set()

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    def cut(self) -> None:
        """The grace is over: every guarded receive returns `ShuttingDown` from now on."""
        self._cut.set()
        for scope in self._waits:
            scope.cancel()

    async def wait_cut(self) -> None:
        await self._cut.wait()

    def guard(
        self, receive: Callable[[], Awaitable[TurnEvent]]
    ) -> Callable[[], Awaitable[TurnEvent]]:
        """``receive`` (a turn's next event), ended by the cut with `ShuttingDown`."""

        async def guarded() -> TurnEvent:
            if not self.is_cut:
                # Cancelled by `cut` alone: the turn's events wait no longer than the grace.
                with trio.CancelScope() as scope:
                    self._waits.add(scope)
                    try:
                        return await receive()
                    finally:
                        self._waits.discard(scope)
            return TurnFailed(error=ShuttingDown())

        return guarded
