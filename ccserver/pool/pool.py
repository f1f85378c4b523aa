"""Live CLI processes: warm ones for new conversations, and ones bound to a conversation.

Starting the CLI costs most of a short request (~0.5 s and ~0.5 CPU-s, reference §6.5);
a process started earlier answers its first turn in ~0.1 s, and a later turn of the same
process in ~0.07 s. So every run is a persistent process (stream-json on a stdin kept
open, reference §6.2), and

* after a good turn it stays **bound** to its conversation for ``pool.idle_seconds``;
  the conversation's next turn is written to it, with no start-up and no ``--resume``;
* the pool keeps ``pool.size`` **warm** processes, each started for a new conversation
  that does not exist yet (its own id, session id and working directory), in the shapes
  (model, system prompt, options) requests asked for most recently (`WarmShapes`).

Correctness first (the hazards are measured in reference §6.2): a process serves one
conversation only, one turn at a time, the next turn is written only after the result,
and a process whose turn failed, timed out or was cancelled is killed, never reused.

Who does what: `Books` decides (synchronously, no I/O); `ProcessHost` starts, retires,
kills and reaps; a turn holds the pool through a `Lease`; `Pool` composes them and does
the upkeep in the background (idle ones retired, warm ones refilled).

The cap has two books, both set from ``claude.max_concurrent_sessions``, and they count
different things:

* `Admission` counts **running turns** and queues the rest: a request waits up to
  ``queue_timeout_seconds`` for one to finish, then gets a 429 with ``Retry-After``; a
  full queue refuses at once. Waiting is for a *turn* to end, which the pool cannot see.
* the pool's ``max_processes`` counts **processes**: busy, idle (warm, bound), starting,
  exiting and promised. Idle ones hold memory but no turn, so the pool never waits: it
  retires idle ones (warm first, then the longest idle) to make room. Exiting ones count
  because they still write their transcripts.

Merging them would make the pool's queue a second admission queue that must also time
out, refuse when full and say when to retry, and make refills and idle processes take
turns' slots; so both stay. As admitted turns are at most the cap, making room never has
to wait for a busy process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ccproto import ProcessKey

from ..proc.reading import RunLimits
from .books import Books
from .coldstarts import ColdStarts
from .host import ProcessHost
from .lease import Lease
from .pooled import Fresh, PooledProcess
from .shapes import WarmShapes

__all__ = ["POOL_COUNTERS", "Pool"]

log = logging.getLogger("ccserver.pool")

# Every counter, so /stats and /metrics show zeros before the first event.
POOL_COUNTERS = ("warm_hits", "bound_hits", "misses", "cold_starts", "warm_started",
                 "retired", "killed")
_TICK = 1.0  # how often idle processes are checked for retirement


class Pool:
    def __init__(
        self,
        *,
        size: int,
        idle_seconds: float,
        max_processes: int,
        limits: RunLimits,
        hold_seconds: float = 900.0,
        max_cold_starts: int = 1,
    ) -> None:
        self.size, self.idle_seconds = size, idle_seconds
        #: How long a process waits, mid-turn, for its client's tool results.
        self.hold_seconds = hold_seconds
        self.limits = limits
        self._books = Books(max_processes)
        #: The limit on processes starting at once (coldstarts.py says why).
        self.cold = ColdStarts(max_cold_starts)
        # The host reports every reaped process, so one that died idle leaves the books.
        self._host = ProcessHost(limits, on_gone=self._books.gone)
        self._shapes = WarmShapes(size)  # the shapes warm processes are kept in
        self._wake = trio.Event()

    @property
    def max_processes(self) -> int:
        return self._books.max_processes

    # ---- lifetime ------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host every process and keep the warm ones topped up, until cancelled.

        Started with ``nursery.start``: turns can lease processes once it has started.

        Resource handling: when cancelled, every process still hosted is killed (its
        ``lifetime`` cancelled) and reaped, with everything it started, before this
        returns; `shutdown` first lets the idle ones exit by themselves.
        """
        async with self._host.open():
            task_status.started()
            while True:
                now = trio.current_time()
                self._retire(self._books.idle_before(now - self.idle_seconds))
                for process in self._books.held_before(now - self.hold_seconds):
                    # Killed, not retired: on EOF the CLI would fail the held calls and
                    # call the API once more for nobody. The session stays resumable.
                    log.info("client tool results for conversation %s never came",
                             process.conversation_id)
                    self._host.kill(process)
                await self._refill()
                # Deadline: the next idle check or deferred refill, unless woken sooner (a
                # shape asked for, a turn that took a warm one answered, a slot freed).
                owed = [until - now for until in self._books.owed.values()]
                with trio.move_on_after(min([_TICK, *owed])):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def shutdown(self) -> None:
        """Retire every idle process and give them a moment to exit by themselves (their
        transcripts complete); what is left is killed when `run` is cancelled."""
        idle = self._books.all_idle()
        for process in idle:
            if process.paused is not None:
                self._host.kill(process)  # as at its deadline (see `run`)
            else:
                self._host.retire(process)
        # Deadline: one grace period for them all; a CLI that needs longer is killed (and
        # its transcript may miss its last lines) rather than hold up the server's exit.
        with trio.move_on_after(self.limits.kill_grace):
            for process in idle:
                await process.dead.wait()

    def want(self, shape: ProcessKey, fresh: Fresh) -> None:
        """Note a shape a new conversation asked for; warm processes follow the latest."""
        self._shapes.note(shape, fresh)
        self._refill_soon()

    def stats(self) -> dict[str, int]:
        counters = self._books.counters + self._host.counters
        return {"size": self.size, "warm": len(self._books.warm),
                "bound": len(self._books.bound), "held": len(self._books.held),
                "spawning": self._host.spawning,
                **{key: counters[key] for key in POOL_COUNTERS}}

    # ---- turns ---------------------------------------------------------------------------

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Lease]:
        """One turn's hold on the pool; leaving the block gives back what it did not use."""
        lease = Lease(self._books, self._host, self.cold, idle_seconds=self.idle_seconds,
                      refill=self._refill_soon)
        try:
            yield lease
        finally:
            # Shielded: a cancelled turn must still give back its process and promise, or
            # the cap would count them for ever. Bounded by `ProcessHost.stop`.
            with trio.CancelScope(shield=True):
                await lease.close()

    async def forget(self, conversation_id: str) -> None:
        """The conversation is going away: stop its process, and wait for one already
        exiting (retired for room or idleness), which may still be writing its files."""
        process = self._books.pop_bound(conversation_id)
        if process is not None:
            await self._host.stop(process, kill=process.paused is not None)
        exiting = self._host.exiting(conversation_id)
        if exiting is not None:
            with trio.CancelScope(shield=True):  # the removal waits for it, cancelled or not
                await exiting.dead.wait()

    # ---- internals -----------------------------------------------------------------------

    def _refill_soon(self) -> None:
        # Through a method: `run` replaces `_wake` after every wake-up.
        self._wake.set()

    def _retire(self, processes: list[PooledProcess]) -> None:
        for process in processes:
            self._host.retire(process)

    async def _refill(self) -> None:
        self._retire(self._books.unwanted_warm(self._shapes))  # shapes no longer asked for
        shapes = self._shapes.newest_first()
        owed = self._books.owing(trio.current_time())  # refilled once their turns answer
        while shapes and len(self._books.warm) + self._host.spawning + owed < self.size:
            if self._books.hosted(self._host.live) >= self.max_processes:
                return
            if not self.cold.free_for_refill():
                return  # turns' cold starts first; a freed slot wakes the refill again
            shape, fresh = WarmShapes.pick(shapes, self._books.warm)
            try:
                process = await self._host.spawn(fresh())
            except Exception as exc:  # a broken CLI must not kill the server
                log.warning("could not start a warm Claude Code process: %s", exc)
                return
            if shape != process.shape:  # the plan changed under us; keep it anyway
                log.debug("warm process shape differs from the requested one")
            self._books.counters["warm_started"] += 1
            self._books.warm.append(process)
