"""One turn, whatever surface asked for it: plan, conversation, process, admission, CLI.

Chat Completions over HTTP and every later surface (Responses, WebSocket) run a request
the same way: `open_turn` checks and plans it (`planner`), takes a warm process if it
starts a new conversation, claims its conversation's turn, finds or makes room for its
process (`Lease`), waits for a CLI slot (`Admission`) and, for a new process, a
cold-start slot (`ColdStarts`), and starts the turn (`run_attempts`); the surface reads
`Run.receive()` and renders the events.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from ccproto import (
    ChatCompletionRequest,
    InvalidRequestError,
    Invocation,
    ToolCallsRequested,
    TurnEvent,
    TurnFinished,
    plan_invocation,
    resolve_model,
    resuming_answered_calls,
    tool_results,
)

from ..conversations.registry import starts_afresh
from ..conversations.ticket import Identity, Ticket
from ..pool.lease import Lease
from .attempts import run_attempts
from .context import TurnServices
from .images import resolve_images
from .planning import planner

__all__ = ["Run", "open_turn"]

log = logging.getLogger("ccserver.turns")


class Run:
    """A running turn: its conversation, model and events."""

    def __init__(self, ticket: Ticket, model: str,
                 events: trio.MemoryReceiveChannel[TurnEvent],
                 answering: Callable[[], None] = lambda: None) -> None:
        self.model = model
        self._ticket, self._events = ticket, events
        #: Called once the surface asks for more after an event (`Lease.answering`).
        self._answering = answering
        self._delivered = False
        #: The surface has received the turn's `TurnFinished` (or its `ToolCallsRequested`:
        #: the turn waits for the client's results, and this response is complete).
        self.finished = False

    @property
    def conversation_id(self) -> str:
        return self._ticket.conversation.id

    async def receive(self) -> TurnEvent:
        """The next event; the last one is a `TurnFinished` (the turn is recorded in its
        conversation by then) or a `TurnFailed`."""
        if self._delivered:
            # The surface has sent the previous event on: the first byte is out.
            self._answering()
        event = await self._events.receive()
        self._delivered = True
        if type(event) in (TurnFinished, ToolCallsRequested):
            self.finished = True
        return event


@asynccontextmanager
async def open_turn(
    services: TurnServices, request: ChatCompletionRequest, *, conversation_id: str | None
) -> AsyncIterator[Run]:
    """Start ``request``'s turn and yield it running.

    Args:
        services: what a turn needs of the server.
        request: the request as the client sent it.
        conversation_id: the conversation the client named, if any.

    Resource handling: leaving the block stops the CLI if the turn still runs. A process
    whose turn did not finish is killed and the turn rolled back in the conversation;
    one that finished stays bound to its conversation. A new conversation whose first
    turn did not finish (or never ran: 429, 503, a client gone) is removed, and the warm
    process that took its identity killed.

    Raises:
        ProtocolError: the OpenAI-shaped errors of a request that cannot run: invalid (400),
            unknown conversation (404), conversation busy (409), server busy (429).
    """
    options = services.options
    # The conversation sees the request as the client sent it (a client resends an image's
    # URL, not our data: URL), the CLI gets the images fetched and checked.
    original, request = request, await resolve_images(request, services.settings)
    model = resolve_model(request, options)
    shape, fresh = planner(services, request)  # before any conversation changes: may 400
    async with services.pool.lease() as lease:
        identity = None
        if starts_afresh(original, conversation_id):
            warm = lease.take_warm(shape)
            if warm is not None:
                identity = Identity(warm.conversation_id, warm.session_id, warm.cwd)
        try:
            async with services.conversations.claim_turn(
                    original, conversation_id=conversation_id, model=model,
                    identity=identity) as ticket:
                try:
                    if ticket.conversation.turns == 0 and not ticket.session.resume:
                        # New conversations of this shape: keep some warm.
                        services.pool.want(shape, fresh)
                    chosen = ticket.conversation.model
                    if chosen and request.model.strip() in ("", "default"):
                        # A conversation created with a model keeps it when the request names none.
                        request = attrs.evolve(request, model=chosen)
                        model = resolve_model(request, options)
                    # The second plan (see core/planning.py): the session is known only now.
                    inv = plan_invocation(request, options, inherited_env=services.environ,
                                          session=ticket.session)
                    await lease.take_bound(ticket.conversation.id, inv.process_key)
                    results = tool_results(request)
                    _check_results(lease, results)
                    if inv.stdin_after_results is None and \
                            await _answered_in_session(services, lease, ticket, results):
                        inv = resuming_answered_calls(inv)
                    admission = services.admission
                    # One deadline for both waits: a request that cannot start within
                    # the queue timeout gets its 429, whichever line it stood in.
                    deadline = trio.current_time() + admission.queue_timeout
                    async with admission.slot(deadline=deadline):
                        # The cold-start slot before making room, not after: a turn in
                        # line then holds no promise, so it retires nobody's idle process
                        # (a conversation's next turn may still find it) while it waits,
                        # and no promise ever waits behind a slot. Holding the slot while
                        # room is made is short (retired processes exit within a grace
                        # period) and is CPU those exits use anyway. No deadlock: slots
                        # are given back at a process's first line or end, which needs
                        # no room, and admitted turns never outnumber the cap.
                        await lease.wait_to_start(deadline=deadline,
                                                  retry_after=admission.retry_after)
                        await lease.make_room()
                        async with _open_run(services, lease, inv, ticket, model,
                                             results) as run:
                            yield run
                finally:
                    if ticket.new_conversation and not ticket.completed:
                        # The conversation goes when claim_turn ends (refused, failed or
                        # cancelled first turn): a warm process that took its identity must be
                        # dead before its files go, and never serve another turn as it.
                        await lease.give_back(good=False)
        except BaseException:
            if identity is not None and lease.process is not None:
                # claim_turn failed before its ticket (a cancelled client, a disk error):
                # the warm process took an identity that is gone, so it serves nothing more.
                await lease.give_back(good=False)
            raise


async def _answered_in_session(services: TurnServices, lease: Lease, ticket: Ticket,
                               results: dict[str, str] | None) -> bool:
    """Tool results whose held turn's process is gone (its deadline passed, room was made,
    the server restarted): written into the session after the calls, for a new process
    that resumes it and goes on with the turn as if the calls had been answered live."""
    if results is None or lease.process is not None or not ticket.session.resume:
        return False
    c = ticket.conversation
    if await services.records.files.answer_calls(
            c.cwd, c.session_id, results, version=services.records.cli_version(),
            now=services.records.clock()):
        return True
    log.info("tool results for conversation %s answer no calls its session waits on: "
             "they go in as text", c.id)
    return False


def _check_results(lease: Lease, results: dict[str, str] | None) -> None:
    """Tool results for a held turn must answer exactly the calls it waits on.

    Raises:
        InvalidRequestError: a call without its result, or a result for no such call.
    """
    process = lease.process
    if results is None or process is None or process.paused is None:
        return  # no results, or no live turn waits for them (they go in as text)
    missing, unknown = process.bridge.check(results)
    problems = []
    if unknown:
        problems.append(f"tool_call_id {', '.join(unknown)} answers no pending tool call")
    if missing:
        problems.append(f"the tool calls {', '.join(missing)} have no 'tool' message")
    if problems:
        raise InvalidRequestError(
            f"Invalid tool results: {'; '.join(problems)}. Each pending call needs exactly "
            "one 'tool' message with its tool_call_id.", param="messages",
            code="invalid_tool_results")


@asynccontextmanager
async def _open_run(services: TurnServices, lease: Lease, inv: Invocation, ticket: Ticket,
                   model: str, results: dict[str, str] | None) -> AsyncIterator[Run]:
    """The turn on the lease's process (or a new one); afterwards the process is given
    back: kept if the turn was recorded (held if it waits for tool results), else
    killed."""
    send_events, events = trio.open_memory_channel[TurnEvent](64)
    run = Run(ticket, model, events, lease.answering)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_attempts, services, lease, inv, ticket, model, send_events,
                               results)
            yield run
            if not run.finished:
                # The surface left before the outcome (its client went away, or it stops on
                # an error): cancelling the nursery stops the attempts, mid-read if need be.
                nursery.cancel_scope.cancel()
    finally:
        # Shielded inside: a failed or cancelled turn's process is gone before the
        # conversation rolls its transcript back.
        await lease.give_back(good=ticket.completed)
