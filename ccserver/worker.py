"""One pooled CLI process (`Worker`) and what decides which requests it can serve."""

from __future__ import annotations

from collections.abc import Callable, Hashable

import attrs
import trio

from ccproto import CLIStream, Invocation

from .cliprocess import CLIProcess

__all__ = ["Fresh", "Worker", "shape_of"]

#: How to plan a process for a new conversation: () -> (invocation, conversation id,
#: session id).
Fresh = Callable[[], tuple[Invocation, str, str]]


def shape_of(inv: Invocation) -> Hashable:
    """What makes two processes interchangeable: argv and env, without the session."""
    argv = list(inv.argv)
    for flag in ("--session-id", "--resume"):
        if flag in argv:
            i = argv.index(flag)
            del argv[i : i + 2]
    return tuple(argv), tuple(sorted(inv.env.items()))


@attrs.define(eq=False)
class Worker:
    """One persistent CLI process and what it is for."""

    shape: Hashable
    conversation_id: str
    session_id: str
    cwd: str
    stream: CLIStream
    proc: CLIProcess | None = None
    busy: bool = False
    taken: bool = False  # ever given a conversation's turn (a warm one may never be)
    turns: int = 0
    idle_since: float = 0.0
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    dead: trio.Event = attrs.field(factory=trio.Event)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and not self.dead.is_set()
