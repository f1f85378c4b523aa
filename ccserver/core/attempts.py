"""The attempts of one turn: write it to a CLI process, read it, and start it again on a
new process while `RetryPolicy` says a new process can fix the failure.

A turn that paused for client tool results goes on here too: its process is held with
the paused `Turn`, and the request that brings the results answers the held calls instead
of writing a prompt, then reads the same turn on. A request that brings a new message
instead abandons the paused turn first (the CLI's ``interrupt``, reference §10).

Text and the outcome go to the turn's event channel as they come. A finished turn is
recorded in its conversation here, before its `TurnFinished` is handed on: a client that
sends its next turn as soon as it has the answer finds it recorded. So persistence does not
depend on anyone reading the events. Likewise a failed turn is settled (rolled back, or its
new conversation removed) before its `TurnFailed` is handed on.
"""

from __future__ import annotations

import logging
import uuid

import trio

from ccproto import (
    CLIError,
    Invocation,
    TextDelta,
    ToolCallsRequested,
    Turn,
    TurnEvent,
    TurnFinished,
    interrupt_line,
)

from ..conversations.records import Records
from ..conversations.ticket import Ticket
from ..pool.lease import Lease
from ..pool.pooled import PooledProcess, ProcessPlan
from ..proc.reading import RunLimits, failure_event, read_turn
from ..proc.spawn import ProcessStartError
from .context import TurnServices

__all__ = ["run_attempts"]

log = logging.getLogger("ccserver.completion")


async def run_attempts(services: TurnServices, lease: Lease, inv: Invocation, ticket: Ticket,
                       model: str, events: trio.MemorySendChannel[TurnEvent],
                       results: dict[str, str] | None = None) -> None:
    """Run the turn on ``lease``'s process (a new one if it has none) until its outcome,
    which is the last event sent (a `ToolCallsRequested` when it pauses); then close
    ``events``. ``results`` are the client's tool results, if the request carries any."""
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
                turn = await _resume_or_prompt(process, inv, results, services.limits)
                sink.prompted = turn is None
                if turn is None:
                    turn = Turn(client_tools=inv.client_tools.names if inv.client_tools
                                else frozenset(), structured=inv.output is not None)
                assert process.proc is not None
                # A new process's first line ends its start-up: its cold-start slot goes.
                failure = await read_turn(process.proc, process.stream, services.limits, sink,
                                          turn=turn, bridge=process.bridge,
                                          on_output=lease.ready)
                if failure is None:
                    if sink.requested is not None:
                        # Paused: the process is held with its turn for the results.
                        process.paused = turn
                        process.bridge.expected = tuple(
                            call.call_id for call in sink.requested.calls)
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


async def _resume_or_prompt(process: PooledProcess, inv: Invocation,
                            results: dict[str, str] | None, limits: RunLimits) -> Turn | None:
    """Start the turn's input: answer a paused turn's calls and return that turn, or write
    the prompt (after abandoning a paused turn) and return None."""
    proc = process.proc
    assert proc is not None
    paused, process.paused = process.paused, None
    try:
        if paused is not None and results is not None:
            await proc.send(process.bridge.answer(results))
            if inv.stdin_after_results is None:
                return paused
            # A question came with the results (a client that ended its run on a call):
            # the turn goes on to its end unseen, then the question is the next turn.
            await _finish_unseen(process, paused, limits)
            await proc.send(inv.stdin_after_results)
            return None
        if paused is not None:
            await _abandon(process, paused, limits)
        if inv.stdin:  # empty: a resumed CLI goes on with its turn by itself
            await proc.send(inv.stdin)
    except trio.BrokenResourceError:
        pass  # it exited: reading its stdout reports how
    return None


class _Discard:
    async def send(self, value: TurnEvent, /) -> None:
        pass


async def _read_unseen(process: PooledProcess, turn: Turn, limits: RunLimits) -> bool:
    """Read ``turn`` on for nobody: True once it ended, False if it paused for new calls.

    Raises:
        CLIError: it went silent; the process cannot take the next turn.
    """
    assert process.proc is not None
    failure = await read_turn(process.proc, process.stream, limits, _Discard(), turn=turn,
                              bridge=process.bridge)
    if failure is not None and failure.error.code == "timeout":
        raise CLIError("Claude Code did not end a turn nobody waits for",
                       code="cli_protocol_error")
    return turn.outcome is not None


async def _finish_unseen(process: PooledProcess, turn: Turn, limits: RunLimits) -> None:
    """Read ``turn`` on to its end for nobody; new calls in it are abandoned."""
    if not await _read_unseen(process, turn, limits):
        await _abandon(process, turn, limits)


async def _abandon(process: PooledProcess, paused: Turn, limits: RunLimits) -> None:
    """End a paused turn whose results will not come: the CLI cancels the held calls,
    writes them as rejected, ends the turn, and stays usable (reference §10).

    Raises:
        CLIError: the turn did not end; the process cannot take the next one.
    """
    assert process.proc is not None
    process.bridge.expected = ()
    await process.proc.send(interrupt_line(f"ccserver-interrupt-{uuid.uuid4().hex}"))
    if not await _read_unseen(process, paused, limits):
        raise CLIError("Claude Code did not end the abandoned tool calls' turn",
                       code="cli_protocol_error")


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
        #: The calls the turn paused for, once recorded.
        self.requested: ToolCallsRequested | None = None
        #: This attempt wrote a prompt (it did not answer held calls).
        self.prompted = True

    async def send(self, event: TurnEvent, /) -> None:
        self.sent = True
        if type(event) is TextDelta:
            self._reply.append(event.text)
        elif type(event) is TurnFinished:
            await self._records.complete(self._ticket, "".join(self._reply), self._model,
                                         prompted=self.prompted, mark=event.transcript_mark)
            self.finished = event
        elif type(event) is ToolCallsRequested:
            await self._records.complete(self._ticket, "".join(self._reply), self._model,
                                         calls=event.calls, prompted=self.prompted,
                                         mark=event.transcript_mark)
            self.requested = event
        await self._events.send(event)
