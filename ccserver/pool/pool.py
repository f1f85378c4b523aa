"""Live CLI processes: warm ones for new conversations, and ones bound to a conversation.

Starting the CLI costs most of a short request (~0.5 s and ~0.5 CPU-s, reference §6.5);
a process started earlier answers its first turn in ~0.1 s, and a later turn of the same
process in ~0.07 s. So every run is a persistent process (stream-json on a stdin kept
open, reference §6.2), and

* after a good turn it stays **bound** to its conversation for ``pool.idle_seconds``;
  the conversation's next turn is written to it, with no start-up and no ``--resume``;
* the pool keeps ``pool.size`` **warm** processes, each started for a new conversation
  that does not exist yet (its own id, session id and working directory), in the shapes
  (model, system prompt, options) requests asked for most recently.

Correctness first (the hazards are measured in reference §6.2): a process serves one
conversation only, one turn at a time, the next turn is written only after the result,
and a process whose turn failed, timed out or was cancelled is killed, never reused.
Idle processes count against ``claude.max_concurrent_sessions`` with the running turns;
when a turn needs room, warm ones are retired first, then the longest idle.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

import trio

from ccproto import Invocation

from ..proc.reading import RunLimits
from .host import Hosting
from .pooled import Fresh, WarmShapes, Worker

__all__ = ["POOL_COUNTERS", "Pool"]

log = logging.getLogger("ccserver.pool")

# Every counter, so /stats and /metrics show zeros before the first event.
POOL_COUNTERS = ("warm_hits", "bound_hits", "misses", "cold_starts", "warm_started",
                 "retired", "killed")
_TICK = 1.0  # how often idle processes are checked for retirement


class Pool(Hosting):
    def __init__(
        self,
        *,
        size: int,
        idle_seconds: float,
        max_processes: int,
        limits: RunLimits,
    ) -> None:
        super().__init__(limits)
        self.size, self.idle_seconds, self.max_processes = size, idle_seconds, max_processes
        self._warm: list[Worker] = []
        self._bound: dict[str, Worker] = {}  # conversation id -> its idle process
        self._promised = 0  # cold starts make_room made room for, not yet spawned
        self._shapes = WarmShapes(size)  # the shapes warm processes are kept in
        self._wake = trio.Event()

    # ---- lifetime ------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host every process and keep the warm ones topped up, until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                while True:
                    self._retire_idle()
                    await self._refill()
                    with trio.move_on_after(_TICK):
                        await self._wake.wait()
                    self._wake = trio.Event()
        finally:
            self._nursery = None  # every process is gone; later retirements are kills

    async def shutdown(self) -> None:
        """Retire every idle process and give them a moment to exit by themselves (their
        transcripts complete); what is left is killed when `run` is cancelled."""
        idle = [*self._warm, *self._bound.values()]
        for worker in idle:
            self._retire(worker)
        with trio.move_on_after(self.limits.kill_grace):
            for worker in idle:
                await worker.dead.wait()

    def want(self, shape: Hashable, fresh: Fresh) -> None:
        """Note a shape a new conversation asked for; warm processes follow the latest."""
        self._shapes.note(shape, fresh)
        self._wake.set()

    def _processes(self) -> int:
        """Every CLI alive (busy, idle, starting, exiting), and those about to start."""
        return len(self._live) + self._promised

    def stats(self) -> dict[str, int]:
        counters = {key: self.counters[key] for key in POOL_COUNTERS}
        return {"size": self.size, "warm": len(self._warm), "bound": len(self._bound),
                "spawning": self._spawning, **counters}

    # ---- taking and giving back ----------------------------------------------------------

    def take_warm(self, shape: Hashable) -> Worker | None:
        for worker in self._warm:
            if worker.shape == shape and worker.alive:
                self._warm.remove(worker)
                worker.busy = worker.taken = True
                self.counters["warm_hits"] += 1
                self._wake.set()  # refill
                return worker
        return None

    async def take_bound(self, conversation_id: str, shape: Hashable) -> Worker | None:
        """The conversation's live process, if it can take this turn; else none is left.

        A process of another shape (the request changed its model or system prompt) is
        stopped first, and one still exiting is waited for: two processes must never
        write one session.
        """
        exiting = self._exiting.get(conversation_id)
        if exiting is not None:
            await exiting.dead.wait()  # retired: it exits, or is killed, soon
        worker = self._bound.pop(conversation_id, None)
        if worker is None:
            return None
        if worker.shape == shape and worker.alive:
            worker.busy = True
            self.counters["bound_hits"] += 1
            return worker
        await self.stop(worker)
        return None

    async def start(self, inv: Invocation, conversation_id: str, session_id: str, *,
                    promised: bool) -> Worker:
        """A new process for ``inv`` (a cold start); ``promised``: `make_room` made room.

        Raises:
            ProcessStartError: the CLI could not be started.
        """
        self.counters["cold_starts"] += 1
        worker = await self._spawn(inv, conversation_id, session_id)
        if promised:
            self.forget_promise()  # counted as live from here on
        worker.busy = worker.taken = True
        return worker

    async def release(self, worker: Worker, *, good: bool) -> None:
        """After a turn: a good one leaves the process bound to its conversation.

        Otherwise the process is gone when this returns, so the conversation's session
        files can be rolled back and resumed by another process.
        """
        worker.busy = False
        if not good or not worker.alive or self.idle_seconds <= 0:
            await self.stop(worker, kill=not good)
            return
        worker.turns += 1
        worker.idle_since = trio.current_time()
        self._bound[worker.conversation_id] = worker

    async def forget(self, conversation_id: str) -> None:
        """The conversation is going away: stop its process."""
        worker = self._bound.pop(conversation_id, None)
        if worker is not None:
            await self.stop(worker)

    async def make_room(self, *, new_process: bool) -> None:
        """Retire idle processes until the cap has room (one more with ``new_process``),
        and wait for them to exit. Warm ones go first (they are only a head start, and
        refill), then the conversations' processes, longest idle first. A promised new
        process is counted until `start` spawns it, or `forget_promise`."""
        needed = 1 if new_process else 0
        idle = list(self._warm) + sorted(self._bound.values(), key=lambda w: w.idle_since)
        retired = idle[:max(0, self._processes() + needed - self.max_processes)]
        for worker in retired:
            self._retire(worker)
        for worker in retired:
            await worker.dead.wait()
        self._promised += needed  # after the waits: a cancelled wait promised nothing

    def forget_promise(self) -> None:
        """A turn that made room for a new process ends without starting one."""
        self._promised = max(0, self._promised - 1)

    # ---- internals -----------------------------------------------------------------------

    def _drop(self, worker: Worker) -> None:
        if worker in self._warm:
            self._warm.remove(worker)
        if self._bound.get(worker.conversation_id) is worker:
            del self._bound[worker.conversation_id]

    def _retire_idle(self) -> None:
        limit = trio.current_time() - self.idle_seconds
        for worker in [w for w in self._bound.values() if w.idle_since < limit]:
            self._retire(worker)

    async def _refill(self) -> None:
        for worker in [w for w in self._warm if w.shape not in self._shapes]:
            self._retire(worker)  # a shape no longer asked for
        shapes = self._shapes.newest_first()
        while shapes and len(self._warm) + self._spawning < self.size:
            if self._processes() >= self.max_processes:
                return
            shape, fresh = WarmShapes.pick(shapes, self._warm)
            try:
                worker = await self._spawn(*fresh())
            except Exception as exc:  # a broken CLI must not kill the server
                log.warning("could not start a warm Claude Code process: %s", exc)
                return
            if shape != worker.shape:  # the plan changed under us; keep it anyway
                log.debug("warm process shape differs from the requested one")
            self.counters["warm_started"] += 1
            self._warm.append(worker)

