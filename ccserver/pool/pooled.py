"""One pooled CLI process (`Worker`) and what decides which requests it can serve:
its shape, and the shapes warm processes are kept in (`WarmShapes`)."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable

import attrs
import trio

from ccproto import CLIStream, Invocation

from ..proc.cli import CLIProcess

__all__ = ["Fresh", "WarmShapes", "Worker", "shape_of"]

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


class WarmShapes:
    """Recently requested shapes, newest last, each with how to plan a process of that
    shape for a new conversation; the pool's warm processes follow the latest ``keep``."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._recent: OrderedDict[Hashable, Fresh] = OrderedDict()

    def __contains__(self, shape: object) -> bool:
        return shape in self._recent

    def note(self, shape: Hashable, fresh: Fresh) -> None:
        self._recent[shape] = fresh
        self._recent.move_to_end(shape)
        while len(self._recent) > max(self.keep, 1):
            self._recent.popitem(last=False)

    def newest_first(self) -> list[tuple[Hashable, Fresh]]:
        return list(reversed(self._recent.items()))

    @staticmethod
    def pick(shapes: list[tuple[Hashable, Fresh]], warm: Iterable[Worker]
             ) -> tuple[Hashable, Fresh]:
        """The shape for the next warm process, of ``shapes`` (`newest_first`)."""
        have = Counter(w.shape for w in warm)
        # The newest shape first, then round-robin: each gets its share of the pool.
        return min(shapes, key=lambda item: have[item[0]])
