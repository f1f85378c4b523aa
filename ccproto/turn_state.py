"""The states of one CLI turn and every transition between them, in one table.

The state machine, after h11's ``_state.py``. Rule: everything that moves `TurnState`
lives in `TRANSITIONS`, a table ``state -> {input: next state}`` whose inputs are record
*classes* (plus `Exit`), so a reader sees every transition in one place and a tool could
draw it. A `Result` is judged before it is looked up: a failing one is the separate input
`FAILING_RESULT`, because it leads to FAILED where a good one leads to DONE. `Turn.feed`
takes the transition first and only then acts on the record, and it acts only when the
turn was live (STARTING or RUNNING) before it; in DONE and FAILED the outcome is settled
and records merely pass through the table.

The table is deliberately tolerant before the exit: the CLI's own output is the authority
on content, so a missing init line, a second init, or lines after the result are accepted
(reference §2.3). What cannot happen is input after the exit, since `CLIStream` delivers
`Exit` last: those pairs (`PROTOCOL_ERRORS`) are absent from the table, and a pair absent
from the table raises `CLIError` and leaves the turn FAILED, as h11 raises
``LocalProtocolError`` and moves to ERROR.
"""

from __future__ import annotations

import enum
from typing import Final

from .cli_types import (
    AssistantMessage,
    ControlRequest,
    ControlResponse,
    Exit,
    NonJSONLine,
    Record,
    Result,
    StreamEvent,
    SystemEvent,
    SystemInit,
    UnknownRecord,
    UserMessage,
)

__all__ = [
    "FAILING_RESULT",
    "INPUTS",
    "PROTOCOL_ERRORS",
    "TRANSITIONS",
    "TurnInput",
    "TurnState",
    "describe",
]


class TurnState(enum.Enum):
    """Where one CLI turn stands (protocol reference §2.3, §2.6).

    STARTING and RUNNING are live: their records can become content. DONE waits for the
    exit with its outcome settled; ENDED and FAILED are terminal.
    """

    #: The process started; no line yet.
    STARTING = "starting"
    #: Lines arrive: API calls and tools in progress.
    RUNNING = "running"
    #: A successful result was seen; the process has yet to exit. Later lines are ignored.
    DONE = "done"
    #: The process exited after a successful result; nothing can follow.
    ENDED = "ended"
    #: A failure was reported (a failing result, an exit without a result, or a protocol
    #: error); everything later is ignored.
    FAILED = "failed"


class _IsError:
    """Qualifies `Result` in the table: the result reports a failure (see `errors_map`)."""


#: The input a failing `Result` is looked up as (h11 qualifies event types the same way).
FAILING_RESULT: Final = (Result, _IsError)

#: A key of the transition table: a record class, `Exit`, or `FAILING_RESULT`.
TurnInput = type[Record] | type[Exit] | tuple[type[Result], type[_IsError]]

_STARTING, _RUNNING, _DONE = TurnState.STARTING, TurnState.RUNNING, TurnState.DONE
_ENDED, _FAILED = TurnState.ENDED, TurnState.FAILED

# Every record that is neither init nor result: content, activity, or lines nobody reads.
_LINES: Final[tuple[TurnInput, ...]] = (
    SystemEvent,
    StreamEvent,
    AssistantMessage,
    UserMessage,
    ControlResponse,
    ControlRequest,
    UnknownRecord,
    NonJSONLine,
)

#: Every input the table knows: one per record class, the failing result, and the exit.
INPUTS: Final[tuple[TurnInput, ...]] = (SystemInit, *_LINES, Result, FAILING_RESULT, Exit)

_LIVE: Final = {
    SystemInit: _RUNNING,
    **dict.fromkeys(_LINES, _RUNNING),
    Result: _DONE,
    FAILING_RESULT: _FAILED,
    Exit: _FAILED,  # an exit without a result
}

#: state -> {input: next state}; a pair missing here is a protocol error.
TRANSITIONS: Final[dict[TurnState, dict[TurnInput, TurnState]]] = {
    # Any line means the process runs; an init line is not required first.
    TurnState.STARTING: _LIVE,
    TurnState.RUNNING: _LIVE,
    # The answer is final once a result closes it (reference §2.3): later records, even a
    # second result, change nothing; only the exit ends the turn.
    TurnState.DONE: {**dict.fromkeys(INPUTS, _DONE), Exit: _ENDED},
    # Terminal: the process exited, so no record and no second exit can follow.
    TurnState.ENDED: {},
    # The failure was reported; the rest of the output and the exit are expected, and
    # ignored.
    TurnState.FAILED: dict.fromkeys(INPUTS, _FAILED),
}

#: The pairs absent from `TRANSITIONS` on purpose: input after the exit. Listed so that a
#: missing pair is a decision, not an oversight (the tests check the two cover everything).
PROTOCOL_ERRORS: Final[frozenset[tuple[TurnState, TurnInput]]] = frozenset(
    (TurnState.ENDED, what) for what in INPUTS
)


def describe(what: TurnInput) -> str:
    return "a failing Result" if isinstance(what, tuple) else what.__name__
