"""One turn's hold on the pool (`Lease`): the process the turn runs on, or the room made
for a new one.

A turn finds its process in this order: a warm one (a new conversation), else its
conversation's bound one, else a new process, for which the cap must have room. Each step
is a synchronous decision in `Books` followed by its I/O here. The lease carries what the
turn holds, so the caller never touches the pool's books: leaving `Pool.lease` gives back
a process the turn took but never wrote to, and releases a promise it never used.

A new process also needs a cold-start slot (`ColdStarts`): the lease takes it before the
start (`wait_to_start`, or `start` itself for a retry) and gives it back once the process
has written its first line (`ready`), or is gone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from ccproto import ProcessKey

from .books import Books
from .coldstarts import ColdStarts
from .host import ProcessHost
from .pooled import PooledProcess, ProcessPlan

__all__ = ["REFILL_WAITS", "Lease"]

#: The longest a turn that took a warm process defers its refill (`Lease.answering`).
REFILL_WAITS = 1.0


class Lease:
    """What one turn holds of the pool; made by `Pool.lease`."""

    def __init__(self, books: Books, host: ProcessHost, cold: ColdStarts, *,
                 idle_seconds: float, refill: Callable[[], None]) -> None:
        self._books, self._host, self._cold = books, host, cold
        self._idle_seconds = idle_seconds
        self._refill = refill
        #: The process the turn runs on; None until it has one (or a new one is started).
        self.process: PooledProcess | None = None
        self._promised = False  # the cap counts a new process for this turn
        #: The cold-start slot the lease holds (its owner token), or None.
        self._slot: object | None = None

    def take_warm(self, shape: ProcessKey) -> PooledProcess | None:
        """A warm process of ``shape``, for a new conversation (it takes its identity)."""
        assert self.process is None
        self.process = self._books.take_warm(shape)
        if self.process is not None:
            # A warm one fewer, refilled once the turn answers (`answering`).
            self._books.owed[self] = trio.current_time() + REFILL_WAITS
        return self.process

    def answering(self) -> None:
        """The turn's first output went out to the client, or the turn is over: the
        warm process it took is replaced now.

        Not sooner: a CLI's start-up is the better part of a CPU-second, and on a small
        machine it would share the cores with this turn's process while that works toward
        its first token (a measured 20 ms or more on 2 cores, BENCHMARKS.md). Nor later
        than `REFILL_WAITS` after the take: a turn can run long before its first output
        (tools, thinking), and the next new conversation wants a warm process too.
        """
        if self._books.owed.pop(self, None) is not None:
            self._refill()

    async def take_bound(self, conversation_id: str, shape: ProcessKey) -> None:
        """The conversation's bound process, if the turn has none yet and it fits.

        A process of another shape is stopped first, and one still exiting is waited for:
        two processes must never write one session.
        """
        if self.process is not None:
            return
        exiting = self._host.exiting(conversation_id)
        if exiting is not None:
            await exiting.dead.wait()  # retired: it exits, or is killed, soon
        self.process, stop = self._books.take_bound(conversation_id, shape)
        if stop is not None:
            # A held one is killed: on EOF the CLI would fail its calls and call the API.
            await self._host.stop(stop, kill=stop.paused is not None)

    async def make_room(self) -> None:
        """Retire idle processes until the cap has room for this turn (a new process,
        if it has none), and wait for them to exit. A held one is killed: on EOF the CLI
        would fail its calls and call the API once more for nobody."""
        retired = self._books.make_room(self._host.live, new_process=self.process is None)
        self._promised = self.process is None
        for process in retired:
            if process.paused is not None:
                self._host.kill(process)
            else:
                self._host.retire(process)
        for process in retired:
            await process.dead.wait()

    async def wait_to_start(self, *, deadline: float, retry_after: float) -> None:
        """Wait in line for a cold-start slot if the turn has no process yet (a warm or
        bound one needs none).

        Raises:
            Busy: no slot became free by ``deadline``.
        """
        if self.process is None and self._slot is None:
            slot = object()
            await self._cold.acquire(slot, deadline=deadline, retry_after=retry_after)
            self._slot = slot

    def ready(self) -> None:
        """The new process has written its first line (its start-up is over), or it is
        gone: its cold-start slot goes to the next in line."""
        slot, self._slot = self._slot, None
        if slot is not None:
            self._cold.release(slot)
            self._refill()  # a refill may be able to start now

    async def start(self, plan: ProcessPlan) -> PooledProcess:
        """A new process for the turn (a cold start), holding a cold-start slot until
        `ready`; a turn started again after a failure waits for one here, with no deadline
        but its own (it was admitted already).

        Raises:
            ProcessStartError: the CLI could not be started.
        """
        assert self.process is None
        await self.wait_to_start(deadline=math.inf, retry_after=0.0)
        self._books.counters["cold_starts"] += 1
        try:
            process = await self._host.spawn(plan)
        except BaseException:
            self.ready()  # nothing is starting
            raise
        if self._promised:
            self._promised = False
            self._books.release_promise()  # counted as live from here on
        process.busy = process.taken = True
        self.process = process
        return process

    async def give_back(self, *, good: bool) -> None:
        """The turn is done with its process: a good turn leaves it bound to its
        conversation; otherwise it is gone when this returns, so the conversation's session
        files can be rolled back and resumed by another process."""
        self.ready()  # a process still starting is gone or done starting
        self.answering()
        process, self.process = self.process, None
        if process is None:
            return
        keep = self._books.keeps(process, good=good, idle_seconds=self._idle_seconds,
                                 now=trio.current_time())
        if not keep:
            await self._host.stop(process, kill=not good)

    async def close(self) -> None:
        """Give back what the turn took and never used: a process it never wrote to goes
        back as it was (it holds nothing of the turn), and an unused promise and
        cold-start slot are released."""
        self.ready()
        self.answering()
        if self.process is not None:
            await self.give_back(good=True)
        if self._promised:
            self._promised = False
            self._books.release_promise()
