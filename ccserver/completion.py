"""One completion, whatever surface asked for it: plan, conversation, admission, CLI turn.

Chat Completions over HTTP and every later surface (Responses, WebSocket) run a request
the same way: `run_completion` checks it, takes its conversation's turn, waits for a CLI
slot and starts the turn; the surface reads `Run.receive()` and renders the events. A
finished turn is recorded in the conversation before its `TurnFinished` is handed out, so
a client that sends its next turn as soon as it has the answer finds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

from ccproto import (
    ChatCompletionRequest,
    TextDelta,
    TurnEvent,
    TurnFinished,
    plan_invocation,
    resolve_model,
)

from .errors import CLIUnavailable
from .turns import run_turn

if TYPE_CHECKING:
    from .conversations import Ticket
    from .gateway import Gateway

__all__ = ["Run", "run_completion"]


class Run:
    """A running turn: its conversation, model and events."""

    def __init__(self, gw: Gateway, ticket: Ticket, model: str,
                 events: trio.MemoryReceiveChannel[TurnEvent]) -> None:
        self.model = model
        self._gw, self._ticket, self._events = gw, ticket, events
        self._reply: list[str] = []
        self.finished = False

    @property
    def conversation_id(self) -> str:
        return self._ticket.conversation.id

    async def receive(self) -> TurnEvent:
        """The next event; the last one is a `TurnFinished` or a `TurnFailed`."""
        event = await self._events.receive()
        if type(event) is TextDelta:
            self._reply.append(event.text)
        elif type(event) is TurnFinished:
            await self._gw.conversations.complete(self._ticket, "".join(self._reply), self.model)
            self.finished = True
        return event


@asynccontextmanager
async def run_completion(
    gw: Gateway, request: ChatCompletionRequest, *, conversation_id: str | None
) -> AsyncIterator[Run]:
    """Start ``request``'s turn; leaving the block stops the CLI if it still runs.

    Raises the OpenAI-shaped errors of a request that cannot run: invalid (400), unknown
    conversation (404), conversation busy (409), server busy (429), no CLI (503).
    """
    options = gw.options
    if options is None:
        raise CLIUnavailable(gw.cli_missing_message())
    # Planned once without a session first, so a bad request changes no conversation.
    plan_invocation(request, options, inherited_env=gw.environ)
    model = resolve_model(request, options)
    async with gw.conversations.turn(request, conversation_id=conversation_id,
                                     model=model) as ticket:
        chosen = ticket.conversation.model
        if chosen and request.model.strip() in ("", "default"):
            # A conversation created with a model keeps it when the request names none.
            request = attrs.evolve(request, model=chosen)
            model = resolve_model(request, options)
        inv = plan_invocation(request, options, inherited_env=gw.environ,
                              session=ticket.session)
        send_events, events = trio.open_memory_channel[TurnEvent](64)
        async with gw.admission.slot(), trio.open_nursery() as nursery:
            nursery.start_soon(run_turn, inv, gw.limits, send_events)
            run = Run(gw, ticket, model, events)
            yield run
            if not run.finished:
                nursery.cancel_scope.cancel()
            # A finished CLI exits by itself within ~40 ms (run_turn bounds the wait); the
            # conversation stays locked until then, so no second process opens its session.
