"""Read one CLI turn and hand out its `TurnEvent`s: the bridge between runner and ccproto.

`read_turn` reads a (persistent) CLI's stdout until the turn's outcome. Text and the final
`TurnFinished` go to the caller's channel as they come; a failure is returned instead, so
the caller can still decide to start the turn again while nothing has reached the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from ccproto import (
    NEED_DATA,
    CLIError,
    CLIStream,
    ControlRequest,
    Exit,
    ToolCallsRequested,
    Turn,
    TurnEvent,
    TurnFailed,
)

from ..errors import CLIStartFailed, CLITimeout
from .bridge import ToolBridge
from .cli import CLIProcess
from .spawn import ProcessStartError

__all__ = ["EventSink", "RunLimits", "failure_event", "read_turn"]

log = logging.getLogger("ccserver.turns")


@attrs.frozen(kw_only=True)
class RunLimits:
    first_output: float  # from start until the model produces anything
    idle: float  # longest silence on stdout after that
    total: float  # the whole turn
    kill_grace: float
    max_line_bytes: int
    stderr_tail_bytes: int


class EventSink(Protocol):
    async def send(self, value: TurnEvent, /) -> None: ...


def _timeout(what: str, seconds: float) -> TurnFailed:
    return TurnFailed(error=CLITimeout(f"Claude Code {what} ({seconds:g} s)"))


def failure_event(exc: ProcessStartError | CLIError) -> TurnFailed:
    """The turn outcome for a CLI that could not start or broke the protocol."""
    if isinstance(exc, CLIError):
        return TurnFailed(error=exc)
    error = CLIStartFailed(f"Claude Code could not be started: {exc}")
    error.__cause__ = exc  # the retry policy judges the start failure's own cause
    return TurnFailed(error=error)


async def read_turn(
    proc: CLIProcess, stream: CLIStream, limits: RunLimits, events: EventSink, *,
    turn: Turn | None = None, bridge: ToolBridge | None = None,
    on_output: Callable[[], None] | None = None,
) -> TurnFailed | None:
    """Read one turn from ``proc``'s stdout; returns its failure, or None once it finished
    or paused for client tool results (``turn.outcome`` is still None then).

    Args:
        proc: the CLI, its turn already written to its stdin.
        stream: the process's own parser: a persistent CLI's next turn goes on reading it.
        limits: the turn's deadlines (first output, idle gap, total).
        events: where text and the final `TurnFinished` go, as they come.
        turn: the turn to read on (one paused for tool results), else a new one.
        bridge: the process's client-tool server, which answers the CLI's control
            requests (without one they are refused).
        on_output: called once, when the first stdout bytes (or EOF) arrive: a new
            process is done starting then.

    Returns:
        None once the turn finished (its `TurnFinished` sent); else the `TurnFailed`,
        unsent, so the caller may still start the turn again: a timeout, an error result,
        or the CLI's exit before its result.

    Resource handling: the process is neither stopped nor closed here; whoever hosts it
    decides whether it serves another turn.

    Raises:
        CLIError: the CLI broke the stream-json protocol (say, a line over the limit).
    """
    turn = turn if turn is not None else Turn()
    bridge = bridge if bridge is not None else ToolBridge(None)
    start = trio.current_time()
    # The total deadline bounds the whole turn.
    with trio.move_on_at(start + limits.total):
        while True:
            event = stream.next_event()
            if event is NEED_DATA:
                if turn.has_output:
                    deadline, what = trio.current_time() + limits.idle, "went silent"
                else:
                    deadline, what = start + limits.first_output, "produced no output"
                data = None
                # Per-read deadline: first output, then idle gap (cancel scope = one read).
                with trio.move_on_at(deadline):
                    data = await proc.receive_some()
                if data is None:
                    limit = limits.idle if turn.has_output else limits.first_output
                    return _timeout(what, limit)
                stream.receive_data(data)
                if on_output is not None:
                    on_output()
                    on_output = None
                if not data:
                    stream.receive_exit(await proc.wait(), proc.stderr_tail())
                continue
            if type(event) is ControlRequest:
                reply = bridge.on_control(event, turn.calls.call_id_for)
                if reply is not None:
                    try:
                        await proc.send(reply)
                    except trio.BrokenResourceError:
                        pass  # it exited: reading its stdout reports how
            for turn_event in turn.feed(event):  # type: ignore[arg-type] # not NEED_DATA here
                if type(turn_event) is TurnFailed:
                    if type(event) is Exit:
                        log.debug("CLI exited %s; stderr: %s", event.returncode,
                                  event.stderr_tail)
                    return turn_event
                await events.send(turn_event)
                if type(turn_event) is ToolCallsRequested:
                    return None  # the CLI waits for the results: the next request's
            if turn.outcome is not None:
                return None
    return _timeout("did not finish", limits.total)
