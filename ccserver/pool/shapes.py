"""The shapes warm processes are kept in: the ones new conversations asked for most
recently, each with how to plan a process of that shape (`Fresh`)."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable

from ccproto import ProcessKey

from .pooled import Fresh, PooledProcess

__all__ = ["WarmShapes"]


class WarmShapes:
    """Recently requested shapes, newest last, each with how to plan a process of that
    shape for a new conversation; the pool's warm processes follow the latest ``keep``."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._recent: OrderedDict[ProcessKey, Fresh] = OrderedDict()

    def __contains__(self, shape: object) -> bool:
        return shape in self._recent

    def note(self, shape: ProcessKey, fresh: Fresh) -> None:
        self._recent[shape] = fresh
        self._recent.move_to_end(shape)
        while len(self._recent) > max(self.keep, 1):
            self._recent.popitem(last=False)

    def newest_first(self) -> list[tuple[ProcessKey, Fresh]]:
        return list(reversed(self._recent.items()))

    @staticmethod
    def pick(shapes: list[tuple[ProcessKey, Fresh]], warm: Iterable[PooledProcess]
             ) -> tuple[ProcessKey, Fresh]:
        """The shape for the next warm process, of ``shapes`` (`newest_first`)."""
        have = Counter(p.shape for p in warm)
        # The newest shape first, then round-robin: each gets its share of the pool.
        return min(shapes, key=lambda item: have[item[0]])
