"""The pool's books, and every decision it makes about them, without I/O.

Like httpcore's ``_assign_requests_to_connections()``, each decision here is synchronous:
it updates the books at once and returns what has to be done (the processes to retire,
the process a turn gets, the process to stop first). The caller does that I/O after
(`Lease`, `Pool`), so no two decisions interleave with an await between them.

The books hold the **idle** processes: *warm* ones (started for a conversation that does
not exist yet) and *bound* ones (kept for their conversation's next turn), and the new
processes *promised* to turns that made room for one and have not started it yet. A busy
process is in no book: its turn holds it (`Lease`). A *held* process waits, mid-turn, for
its client's tool results: it is its conversation's like a bound one, and makes room only
when no warm or bound one is left (it is killed then, as at its hold deadline, and its
conversation goes on from its session). Clients often never send those results: an agent
framework's run that ends on a call (pydantic-ai's ``final_result`` output tool, the Agents
SDK's ``StopAtTools``) leaves one held process per run, which must not outgrow the cap.

The cap (``claude.max_concurrent_sessions``) counts every hosted process (busy, idle,
starting, exiting: the host's ``live``) plus the promised ones, and a process retired to
make room only once: while it exits, its place is the promise it was retired for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container

from ccproto import ProcessKey

from .pooled import PooledProcess

__all__ = ["Books"]


class Books:
    """Idle processes and promises, and the decisions over them."""

    def __init__(self, max_processes: int) -> None:
        self.max_processes = max_processes
        self.warm: list[PooledProcess] = []
        self.bound: dict[str, PooledProcess] = {}  # conversation id -> its idle process
        self.held: dict[str, PooledProcess] = {}  # conversation id -> its paused process
        self.promised = 0  # new processes turns made room for, not yet started
        #: Retired by `make_room` and still exiting: each one's place already went to a
        #: promise, so the cap counts it once (as the promise), not also as live.
        self.leaving: set[PooledProcess] = set()
        #: "warm_hits", "bound_hits", "misses": how turns found their process.
        self.counters: Counter[str] = Counter()
        #: Warm processes taken by turns that have not answered yet (by their lease): the
        #: time until which each one's refill waits (`Lease.answering` says why).
        self.owed: dict[object, float] = {}

    def hosted(self, live: int) -> int:
        """What the cap counts: ``live`` (every hosted process) and the promised ones, less
        those leaving to make room (their places are promised)."""
        return live - len(self.leaving) + self.promised

    # ---- a turn's process ----------------------------------------------------------------

    def take_warm(self, shape: ProcessKey) -> PooledProcess | None:
        """A warm process of ``shape`` for a new conversation, now busy; else None."""
        for process in self.warm:
            if process.shape == shape and process.alive:
                self.warm.remove(process)
                process.busy = process.taken = True
                self.counters["warm_hits"] += 1
                return process
        return None

    def take_bound(self, conversation_id: str, shape: ProcessKey
                   ) -> tuple[PooledProcess | None, PooledProcess | None]:
        """(the conversation's idle process, now busy, or None: a miss; a process to stop).

        A bound process of another shape (the request changed its model or system prompt)
        or one that died is left to stop: the turn starts a new one after it is gone.
        """
        process = self.bound.pop(conversation_id, None) or self.held.pop(conversation_id, None)
        if process is not None and process.shape == shape and process.alive:
            process.busy = True
            self.counters["bound_hits"] += 1
            return process, None
        self.counters["misses"] += 1
        return None, process

    def make_room(self, live: int, *, new_process: bool) -> list[PooledProcess]:
        """The idle processes to retire so the cap has room (one more with
        ``new_process``, which is then promised); they leave the books now.

        Warm ones go first (they are only a head start, and refill), then the
        conversations' idle processes, longest idle first, then held ones, longest held
        first (the caller kills those: see `Lease.make_room`). When every process is busy
        nothing can go: `Admission` bounds the busy ones below the cap.
        """
        needed = 1 if new_process else 0
        idle = [*self.warm, *sorted(self.bound.values(), key=lambda p: p.idle_since),
                *sorted(self.held.values(), key=lambda p: p.idle_since)]
        retired = idle[:max(0, self.hosted(live) + needed - self.max_processes)]
        for process in retired:
            self.drop(process)
        self.leaving.update(retired)
        self.promised += needed
        return retired

    def release_promise(self) -> None:
        """A promised process was started (it is live now), or never will be."""
        self.promised = max(0, self.promised - 1)

    def keeps(self, process: PooledProcess, *, good: bool, idle_seconds: float, now: float
              ) -> bool:
        """After its turn: whether ``process`` stays bound to its conversation (then it is
        booked, idle since ``now``); if not, the caller stops it."""
        process.busy = False
        held = process.paused is not None  # its hold has its own deadline, not the idle one
        if not good or not process.alive or (idle_seconds <= 0 and not held):
            return False
        process.turns += 1
        process.idle_since = now
        book = self.held if held else self.bound
        book[process.conversation_id] = process
        return True

    # ---- the pool's own upkeep -----------------------------------------------------------

    def owing(self, now: float) -> int:
        """How many refills wait for their turn's first answer (`owed`), those past their
        deadline forgotten: they go now."""
        for lease in [lease for lease, until in self.owed.items() if until <= now]:
            del self.owed[lease]
        return len(self.owed)

    def drop(self, process: PooledProcess) -> None:
        """Forget ``process`` as an idle one: it is retired, killed or gone."""
        if process in self.warm:
            self.warm.remove(process)
        for book in (self.bound, self.held):
            if book.get(process.conversation_id) is process:
                del book[process.conversation_id]

    def gone(self, process: PooledProcess) -> None:
        """``process`` is reaped (the host's ``on_gone``): off every book."""
        self.leaving.discard(process)
        self.drop(process)

    def pop_bound(self, conversation_id: str) -> PooledProcess | None:
        """The conversation's idle or held process, off the books."""
        return self.bound.pop(conversation_id, None) or self.held.pop(conversation_id, None)

    def held_before(self, limit: float) -> list[PooledProcess]:
        """Held processes whose calls waited since before ``limit``; they leave the books."""
        expired = [p for p in self.held.values() if p.idle_since < limit]
        for process in expired:
            self.drop(process)
        return expired

    def idle_before(self, limit: float) -> list[PooledProcess]:
        """Bound processes idle since before ``limit``, to retire; they leave the books."""
        expired = [p for p in self.bound.values() if p.idle_since < limit]
        for process in expired:
            self.drop(process)
        return expired

    def unwanted_warm(self, shapes: Container[ProcessKey]) -> list[PooledProcess]:
        """Warm processes of a shape no longer asked for, to retire; they leave the books."""
        unwanted = [p for p in self.warm if p.shape not in shapes]
        for process in unwanted:
            self.drop(process)
        return unwanted

    def all_idle(self) -> list[PooledProcess]:
        """Every idle process, to retire at shutdown; they leave the books."""
        idle = [*self.warm, *self.bound.values(), *self.held.values()]
        self.warm, self.bound, self.held = [], {}, {}
        return idle
