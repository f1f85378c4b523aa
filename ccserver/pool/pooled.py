"""One pooled CLI process (`PooledProcess`), keyed by its shape (ccproto's process key:
what makes two processes interchangeable), and how the pool plans one for a conversation
that does not exist yet (`Fresh`, returning a `ProcessPlan`)."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

from ccproto import CLIStream, Invocation, ProcessKey, Turn

from ..proc.bridge import ToolBridge
from ..proc.cli import CLIProcess

__all__ = ["Fresh", "PooledProcess", "ProcessPlan"]


@attrs.frozen(kw_only=True)
class ProcessPlan:
    """A process to start for a new conversation, planned before the conversation exists."""

    inv: Invocation
    conversation_id: str
    session_id: str
    #: ``inv.cwd`` is the conversation's own directory (not a shared workspace): the host
    #: makes it before the start, and removes it if empty when no turn ever came.
    own_cwd: bool = False


#: How to plan a process for a new conversation (a new identity each call). The one
#: callback from core into the pool: the pool refills on its own schedule, and only core
#: knows how to plan a run and whom to ask for a new conversation's identity.
Fresh = Callable[[], ProcessPlan]


@attrs.define(eq=False)
class PooledProcess:
    """One persistent CLI process and what it is for."""

    shape: ProcessKey
    conversation_id: str
    session_id: str
    cwd: str
    stream: CLIStream
    #: Its in-band MCP server for the client's tools (with no tools, it refuses calls).
    bridge: ToolBridge = attrs.field(factory=lambda: ToolBridge(None))
    #: A turn waiting for client tool results: the process is *held* for its conversation,
    #: and that conversation's next request answers the calls and reads this turn on.
    paused: Turn | None = None
    own_cwd: bool = False  # see `ProcessPlan.own_cwd`
    proc: CLIProcess | None = None
    # Set while no turn holds it (see `busy`).
    _free: trio.Event = attrs.field(factory=lambda: _set(trio.Event()), alias="_free")
    taken: bool = False  # ever given a conversation's turn (a warm one may never be)
    turns: int = 0
    idle_since: float = 0.0
    #: Bounds the process's whole life in the host: cancelling it kills the process.
    lifetime: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    #: Set once the process and everything it started are reaped.
    dead: trio.Event = attrs.field(factory=trio.Event)

    @property
    def busy(self) -> bool:
        """A turn holds it."""
        return not self._free.is_set()

    @busy.setter
    def busy(self, value: bool) -> None:
        if value and not self.busy:
            self._free = trio.Event()
        elif not value:
            self._free.set()

    async def wait_free(self) -> None:
        """Until no turn holds it: a process that exits by itself mid-turn keeps its pipes
        until its turn has read them out."""
        await self._free.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and not self.dead.is_set()


def _set(event: trio.Event) -> trio.Event:
    event.set()
    return event
