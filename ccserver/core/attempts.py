"""The attempts of one turn: write it to a CLI process, read it, and start it again on a
new process while `RetryPolicy` says a new process can fix the failure.

Text and the outcome go to the turn's event channel as they come. A finished turn is
recorded in its conversation here, before its `TurnFinished` is handed on: a client that
sends its next turn as soon as it has the answer finds it recorded. So persistence does not
depend on anyone reading the events. Likewise a failed turn is settled (rolled back, or its
new conversation removed) before its `TurnFailed` is handed on.
"""

from __future__ import annotations

import logging

import trio

from ccproto import CLIError, Invocation, TextDelta, TurnEvent, TurnFinished

from ..conversations.records import Records, Ticket
from ..pool.lease import Lease
from ..pool.pooled import ProcessPlan
from ..proc.reading import failure_event, read_turn
from ..proc.spawn import ProcessStartError
from .context import TurnServices

__all__ = ["run_attempts"]

log = logging.getLogger("ccserver.completion")


async def run_attempts(services: TurnServices, lease: Lease, inv: Invocation, ticket: Ticket,
                       model: str, events: trio.MemorySendChannel[TurnEvent]) -> None:
    """Run the turn on ``lease``'s process (a new one if it has none) until its outcome,
    which is the last event sent; then close ``events``."""
    conversation = ticket.conversation
    async with events:
        attempt = 1
        while True:
            sink = _Sink(events, services.records, ticket, model)
            error: BaseException
            try:
                process = lease.process or await lease.start(ProcessPlan(
                    inv=inv, conversation_id=conversation.id,
                    session_id=ticket.session.session_id))
                assert process.proc is not None
                try:
                    await process.proc.send(inv.stdin)
                except trio.BrokenResourceError:
                    pass  # it exited: reading its stdout reports how
                failure = await read_turn(process.proc, process.stream, services.limits, sink)
                if failure is None:
                    return
                if sink.finished is not None:
                    # Recorded, then read_turn's deadline fell while its TurnFinished waited
                    # for room (a slow reader): the turn happened, so it ends as one, out
                    # here where no deadline can cut it in two again.
                    await events.send(sink.finished)
                    return
                error = failure.error
            except (ProcessStartError, CLIError) as exc:
                failure, error = failure_event(exc), exc
            if not services.retry.should_retry(error, attempt, sink.sent):
                # Settled before the client hears of it: the process gone, the turn rolled
                # back, a new conversation removed, so a client that lists conversations or
                # asks again at once never finds the failed turn (claim_turn settles again).
                await lease.give_back(good=False)
                try:
                    await services.records.settle(ticket)
                except Exception:  # the client still hears why its turn failed
                    log.exception("settling a failed turn failed; claim_turn tries again")
                await events.send(failure)
                return
            log.info("retrying a Claude Code turn that failed before any output: %s", error)
            # The failed process is gone before its session is rolled back; a new process
            # resumes the session as the ticket planned it.
            await lease.give_back(good=False)
            await services.records.files.roll_back(
                conversation.cwd, conversation.session_id, conversation.turns)
            # Not shielded: a client gone meanwhile ends the turn here.
            await trio.sleep(services.retry.backoff(attempt))
            attempt += 1


class _Sink:
    """Passes one attempt's events on, noting whether any reached the client's side, and
    records the turn in its conversation before passing its `TurnFinished` on."""

    def __init__(self, events: trio.MemorySendChannel[TurnEvent],
                 records: Records, ticket: Ticket, model: str) -> None:
        self._events = events
        self._records, self._ticket, self._model = records, ticket, model
        self._reply: list[str] = []
        self.sent = False
        #: The turn's `TurnFinished`, once the turn is recorded (whether or not it went on).
        self.finished: TurnFinished | None = None

    async def send(self, event: TurnEvent, /) -> None:
        self.sent = True
        if type(event) is TextDelta:
            self._reply.append(event.text)
        elif type(event) is TurnFinished:
            await self._records.complete(self._ticket, "".join(self._reply), self._model)
            self.finished = event
        await self._events.send(event)
