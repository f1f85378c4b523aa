"""Run one CLI turn and deliver its `TurnEvent`s: the bridge between runner and ccproto.

Every way a run can end arrives as a final `TurnFinished` or `TurnFailed` on the channel:
timeouts, a CLI that cannot start, a protocol error. The caller never has to tell an
exception from a result, and leaving `run_turn` always leaves no process behind (the
runner's context guarantees it, under cancellation too).
"""

from __future__ import annotations

import logging

import attrs
import trio

from ccproto import NEED_DATA, CLIError, CLIStream, Exit, Invocation, Turn, TurnEvent, TurnFailed

from .runner import CLIProcess, ProcessStartError, open_cli

__all__ = ["RunLimits", "drive_turn", "failure_event", "run_turn"]

log = logging.getLogger("ccserver.turns")


@attrs.frozen(kw_only=True)
class RunLimits:
    first_output: float  # from start until the model produces anything
    idle: float  # longest silence on stdout after that
    total: float  # the whole run
    exit_grace: float  # how long a run may linger after its result before it is stopped
    kill_grace: float
    max_line_bytes: int
    stderr_tail_bytes: int


def _timeout(what: str, seconds: float) -> TurnFailed:
    return TurnFailed(
        error=CLIError(
            f"Claude Code {what} ({seconds:g} s)",
            status_hint=504,
            error_type="server_error",
            code="timeout",
            retryable=True,
        )
    )


async def run_turn(
    inv: Invocation, limits: RunLimits, events: trio.MemorySendChannel[TurnEvent]
) -> None:
    """Run ``inv`` and send its turn events to ``events``; closes ``events`` when done."""
    async with events:
        try:
            outcome = await _run(inv, limits, events)
        except (ProcessStartError, CLIError) as exc:
            outcome = failure_event(exc)
        if outcome is not None:
            await events.send(outcome)


def failure_event(exc: ProcessStartError | CLIError) -> TurnFailed:
    """The turn outcome for a CLI that could not start or broke the protocol."""
    if isinstance(exc, CLIError):
        return TurnFailed(error=exc)
    return TurnFailed(
        error=CLIError(
            f"Claude Code could not be started: {exc}",
            status_hint=503,
            error_type="server_error",
            code="cli_unavailable",
        )
    )


async def _run(
    inv: Invocation, limits: RunLimits, events: trio.MemorySendChannel[TurnEvent]
) -> TurnFailed | None:
    stream = CLIStream(max_line_size=limits.max_line_bytes)
    async with open_cli(
        inv, kill_grace=limits.kill_grace, stderr_tail_bytes=limits.stderr_tail_bytes
    ) as proc:
        # Leaving this block by a deadline hands the process to open_cli's teardown, which
        # stops it and everything it started.
        return await drive_turn(proc, stream, limits, events, until_exit=True)


async def drive_turn(
    proc: CLIProcess,
    stream: CLIStream,
    limits: RunLimits,
    events: trio.MemorySendChannel[TurnEvent],
    *,
    until_exit: bool,
) -> TurnFailed | None:
    """Read one turn from ``proc``'s stdout into ``events``.

    Returns None once the turn's outcome was sent (and, with ``until_exit``, the process
    has exited), or the timeout failure that ended it. ``stream`` belongs to the process:
    a persistent CLI's next turn continues reading it.
    """
    turn = Turn()
    start = trio.current_time()
    # The total deadline bounds the whole turn.
    with trio.move_on_at(start + limits.total):
        while True:
            event = stream.next_event()
            if event is NEED_DATA:
                if turn.outcome is not None:
                    # The answer is complete; the process only has to exit now.
                    deadline, what = trio.current_time() + limits.exit_grace, None
                elif turn.has_output:
                    deadline, what = trio.current_time() + limits.idle, "went silent"
                else:
                    deadline, what = start + limits.first_output, "produced no output"
                data = None
                # Per-read deadline: first output, then idle gap (cancel scope = one read).
                with trio.move_on_at(deadline):
                    data = await proc.receive_some()
                if data is None:
                    if what is None:
                        return None
                    limit = limits.idle if turn.has_output else limits.first_output
                    return _timeout(what, limit)
                stream.receive_data(data)
                if not data:
                    stream.receive_exit(await proc.wait(), proc.stderr_tail())
                continue
            for turn_event in turn.feed(event):  # type: ignore[arg-type] # not NEED_DATA here
                await events.send(turn_event)
            if type(event) is Exit:
                if event.returncode != 0 and turn.outcome is not None:
                    log.debug("CLI exited %s; stderr: %s", event.returncode, event.stderr_tail)
                return None
            if turn.outcome is not None and not until_exit:
                return None
    return None if turn.outcome is not None else _timeout("did not finish", limits.total)
