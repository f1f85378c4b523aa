"""One completion, whatever surface asked for it: plan, conversation, admission, CLI turn.

Chat Completions over HTTP and every later surface (Responses, WebSocket) run a request
the same way: `open_turn` checks it, takes its conversation's turn, waits for a CLI
slot and starts the turn; the surface reads `Run.receive()` and renders the events. A
finished turn is recorded in the conversation before its `TurnFinished` is handed out, so
a client that sends its next turn as soon as it has the answer finds it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from ccproto import (
    ChatCompletionRequest,
    CLIError,
    Invocation,
    Message,
    PlanOptions,
    SessionPlan,
    TextDelta,
    TurnEvent,
    TurnFinished,
    plan_invocation,
    resolve_model,
)

from ..conversations.registry import Identity, Ticket
from ..pool.pooled import Fresh, Worker, shape_of
from ..proc.reading import drive_turn, failure_event
from ..proc.spawn import ProcessStartError
from .context import TurnServices
from .images import resolve_images

__all__ = ["Run", "open_turn", "planner"]

log = logging.getLogger("ccserver.completion")


class Run:
    """A running turn: its conversation, model and events."""

    def __init__(self, services: TurnServices, ticket: Ticket, model: str,
                 events: trio.MemoryReceiveChannel[TurnEvent]) -> None:
        self.model = model
        self._services, self._ticket, self._events = services, ticket, events
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
            await self._services.conversations.complete(self._ticket, "".join(self._reply),
                                                        self.model)
            self.finished = True
        return event


@asynccontextmanager
async def open_turn(
    services: TurnServices, request: ChatCompletionRequest, *, conversation_id: str | None
) -> AsyncIterator[Run]:
    """Start ``request``'s turn; leaving the block stops the CLI if it still runs.

    Raises the OpenAI-shaped errors of a request that cannot run: invalid (400), unknown
    conversation (404), conversation busy (409), server busy (429).
    """
    options = services.options
    # The conversation sees the request as the client sent it (a client resends an image's
    # URL, not our data: URL), the CLI gets the images fetched and checked.
    original, request = request, await resolve_images(request, services.settings)
    model = resolve_model(request, options)
    pool = services.pool
    # Planned once without a session first (the `planner` does), so a bad request changes
    # no conversation; earlier turns are checked when the session is known.
    shape, fresh = planner(services, request, options)
    taken: list[Worker] = []  # processes this turn took from the pool

    def reserve() -> Identity | None:
        worker = pool.take_warm(shape)
        if worker is None:
            return None
        taken.append(worker)
        return Identity(worker.conversation_id, worker.session_id, worker.cwd)

    try:
        async with services.conversations.turn(original, conversation_id=conversation_id,
                                         model=model, reserve=reserve) as ticket:
            if ticket.conversation.turns == 0 and not ticket.session.resume:
                pool.want(shape, fresh)  # new conversations of this shape: keep some warm
            chosen = ticket.conversation.model
            if chosen and request.model.strip() in ("", "default"):
                # A conversation created with a model keeps it when the request names none.
                request = attrs.evolve(request, model=chosen)
                model = resolve_model(request, options)
            inv = plan_invocation(request, options, inherited_env=services.environ,
                                  session=ticket.session)
            worker = taken[0] if taken else await pool.take_bound(ticket.conversation.id,
                                                                  shape_of(inv))
            if worker is None:
                pool.counters["misses"] += 1
            else:
                taken[:] = [worker]
            async with services.admission.slot():
                await pool.make_room(new_process=worker is None)
                async with _turn_on(services, worker, inv, ticket, model) as run:
                    yield run
    finally:
        for worker in taken:
            if worker.busy:
                # Taken, then the turn never reached it (429, a cancelled client): it holds
                # nothing of this turn, so it goes back as it was.
                await pool.release(worker, good=True)


@asynccontextmanager
async def _turn_on(
    services: TurnServices, worker: Worker | None, inv: Invocation, ticket: Ticket, model: str
) -> AsyncIterator[Run]:
    """The turn on ``worker`` (None: a new process); afterwards the process is given back."""
    send_events, events = trio.open_memory_channel[TurnEvent](64)
    used: list[Worker] = [worker] if worker is not None else []
    run = Run(services, ticket, model, events)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drive, services, worker, inv, ticket, send_events, used)
            yield run
            if not run.finished:
                nursery.cancel_scope.cancel()
    finally:
        if used:
            # Shielded inside: a failed or cancelled turn's process is gone before the
            # conversation rolls its transcript back.
            await services.pool.release(used[0], good=run.finished)


async def _drive(services: TurnServices, worker: Worker | None, inv: Invocation, ticket: Ticket,
                 events: trio.MemorySendChannel[TurnEvent], used: list[Worker]) -> None:
    """Run the turn, starting it again while a new process can fix a failure (issue 7)."""
    conversation = ticket.conversation
    promised = worker is None  # make_room made room for one new process, not yet started
    try:
        async with events:
            attempt = 1
            while True:
                sink = _Sink(events)
                error: BaseException
                try:
                    if worker is None:
                        worker = await services.pool.start(inv, conversation.id,
                                                     ticket.session.session_id,
                                                     promised=promised)
                        promised = False
                        used.append(worker)
                    assert worker.proc is not None
                    try:
                        await worker.proc.send(inv.stdin)
                    except trio.BrokenResourceError:
                        pass  # it exited: reading its stdout reports how
                    failure = await drive_turn(worker.proc, worker.stream, services.limits, sink)
                    if failure is None:
                        return
                    error = failure.error
                except (ProcessStartError, CLIError) as exc:
                    failure, error = failure_event(exc), exc
                if not services.retry.should_retry(error, attempt, sink.sent):
                    await events.send(failure)
                    return
                log.info("retrying a Claude Code turn that failed before any output: %s",
                         error)
                if worker is not None:
                    # A fresh process resumes the session as the ticket planned it.
                    await services.pool.release(worker, good=False)
                    used.remove(worker)
                    worker = None
                await services.conversations.files.roll_back(
                    conversation.cwd, conversation.session_id, conversation.turns)
                await trio.sleep(services.retry.backoff(attempt))
                attempt += 1
    finally:
        if promised:
            services.pool.forget_promise()  # it never got as far as starting its process


class _Sink:
    """Passes events on, noting whether any reached the client's side."""

    def __init__(self, events: trio.MemorySendChannel[TurnEvent]) -> None:
        self._events = events
        self.sent = False

    async def send(self, event: TurnEvent, /) -> None:
        self.sent = True
        await self._events.send(event)


def planner(services: TurnServices, request: ChatCompletionRequest,
            options: PlanOptions) -> tuple[Hashable, Fresh]:
    """The shape of ``request``'s process, and how to plan one for a new conversation.

    Raises:
        InvalidRequestError: the request cannot run (its earlier turns aside).
    """
    system = tuple(m for m in request.messages if m.role in ("system", "developer"))
    opening = attrs.evolve(request, messages=(*system, request.messages[-1]),
                           conversation_id=None)
    plan_invocation(opening, options, inherited_env=services.environ)  # checks the last turn
    # The argv does not depend on the prompt: warm processes keep no image bytes.
    opening = attrs.evolve(opening, messages=(*system, _text_only(request.messages[-1])))

    def plan(session: SessionPlan) -> Invocation:
        return plan_invocation(opening, options, inherited_env=services.environ, session=session)

    def fresh() -> tuple[Invocation, str, str]:
        conversation_id, session_id, cwd = services.conversations.new_identity()
        Path(cwd).mkdir(parents=True, exist_ok=True)
        return plan(SessionPlan(session_id=session_id, resume=False, cwd=cwd)), \
            conversation_id, session_id

    return shape_of(plan(SessionPlan(session_id="-", resume=False, cwd=""))), fresh


def _text_only(message: Message) -> Message:
    return attrs.evolve(message, content="-")
