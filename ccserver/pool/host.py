"""Hosting the pool's CLI processes: each is started in the host's nursery and lives there
until it is retired (EOF on its stdin, so it exits by itself and completes its transcript,
reference §6.2), killed, or exits; then it is reaped with everything it started.

The host decides nothing about which process serves which turn: `Pool` owns it and keeps
those books. The host tells the pool when a process is gone (``on_gone``), so a process
that died by itself leaves the pool's books too. A retired or killed process is *exiting*
until it is reaped; the pool waits for a conversation's exiting process before another one writes
that conversation's session.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from ccproto import CLIStream

from ..proc.bridge import ToolBridge
from ..proc.reading import RunLimits
from ..proc.spawn import open_cli
from .pooled import PooledProcess, ProcessPlan

__all__ = ["ProcessHost"]


class ProcessHost:
    """Every CLI process hosted, from spawn until reaped.

    Args:
        limits: the sizes and grace periods of one CLI run.
        on_gone: called (synchronously) with each process once it is reaped.
    """

    def __init__(self, limits: RunLimits, on_gone: Callable[[PooledProcess], None]) -> None:
        self.limits = limits
        self._on_gone = on_gone
        self._nursery: trio.Nursery | None = None
        self.spawning = 0  # processes being started
        self._live: set[PooledProcess] = set()
        # Retired or killed processes still exiting, by conversation: its next turn waits.
        self._exiting: dict[str, PooledProcess] = {}
        #: "retired" and "killed", for the pool's stats.
        self.counters: Counter[str] = Counter()

    @property
    def live(self) -> int:
        """Every process hosted: starting, busy, idle or exiting."""
        return len(self._live)

    def exiting(self, conversation_id: str) -> PooledProcess | None:
        """The conversation's retired or killed process that has not exited yet, if any."""
        return self._exiting.get(conversation_id)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """Host processes for the duration of the block; leaving it kills and reaps them."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                yield
        finally:
            self._nursery = None  # every process is gone; later retirements are kills

    async def spawn(self, plan: ProcessPlan) -> PooledProcess:
        """Start ``plan``'s process and return it running.

        Raises:
            ProcessStartError: the CLI could not be started.
        """
        assert self._nursery is not None, "Pool.run() is not running"
        inv = plan.inv
        process = PooledProcess(shape=inv.process_key, conversation_id=plan.conversation_id,
                                session_id=plan.session_id, cwd=inv.cwd, own_cwd=plan.own_cwd,
                                stream=CLIStream(max_line_size=self.limits.max_line_bytes),
                                bridge=ToolBridge(inv.client_tools))
        if plan.own_cwd:
            os.makedirs(inv.cwd, exist_ok=True)
        self.spawning += 1
        self._live.add(process)
        try:
            await self._nursery.start(self._host, process, plan)
        except BaseException:
            self._live.discard(process)
            raise
        finally:
            self.spawning -= 1
        return process

    async def _host(self, process: PooledProcess, plan: ProcessPlan,
                    task_status: trio.TaskStatus[None]) -> None:
        try:
            with process.lifetime:
                async with open_cli(plan.inv, kill_grace=self.limits.kill_grace,
                                    stderr_tail_bytes=self.limits.stderr_tail_bytes,
                                    keep_stdin=True) as proc:
                    process.proc = proc
                    task_status.started()
                    # Lives until stdin is closed (retired) or its lifetime cancelled
                    # (killed); leaving open_cli reaps it and anything it started.
                    await proc.wait()
                    # Exited by itself mid-turn: leaving closes its stdout, and the turn
                    # must read what is left there first (its reader sees the EOF soon).
                    await process.wait_free()
        finally:
            process.dead.set()
            self._live.discard(process)
            if process.own_cwd and not process.taken:
                _remove_if_empty(process.cwd)  # made for a conversation that never came
            if self._exiting.get(process.conversation_id) is process:
                del self._exiting[process.conversation_id]
            self._on_gone(process)

    def retire(self, process: PooledProcess) -> None:
        """Close stdin: the CLI exits by itself and flushes its transcript (§6.2)."""
        self.counters["retired"] += 1
        if not process.dead.is_set():
            self._exiting[process.conversation_id] = process
        if self._nursery is not None:
            self._nursery.start_soon(self._close_or_kill, process)
        else:
            process.lifetime.cancel()

    def kill(self, process: PooledProcess) -> None:
        """Cancel its lifetime; it is *exiting* until reaped, as a retired one is."""
        self.counters["killed"] += 1
        if not process.dead.is_set():
            self._exiting[process.conversation_id] = process
        process.lifetime.cancel()

    async def stop(self, process: PooledProcess, *, kill: bool = False) -> None:
        """Retire (or kill) ``process`` and wait until it is gone, its session files complete."""
        # Shielded: the caller (a turn being cancelled, say) must not leave before the
        # process is gone, or the conversation's transcript could be rolled back or resumed
        # by another process while this one still writes it. Bounded by `_close_or_kill`'s
        # deadline, or open_cli's teardown after a kill.
        with trio.CancelScope(shield=True):
            if kill:
                self.kill(process)
            else:
                self.retire(process)
            await process.dead.wait()

    async def _close_or_kill(self, process: PooledProcess) -> None:
        """EOF on stdin; a CLI that has not exited a grace period later is killed."""
        if process.proc is not None:
            await process.proc.close_stdin()
        # Deadline: the CLI's own exit after EOF (it writes its transcript first), within
        # the grace period; the extra second covers what `dead` also waits for after that
        # exit, open_cli's reaping (the sweep of leftovers, the stderr settle of 0.5 s).
        with trio.move_on_after(self.limits.kill_grace + 1):
            await process.dead.wait()
            return
        self.kill(process)


def _remove_if_empty(directory: str) -> None:
    # rmdir only: never anything the CLI may have written there.
    with contextlib.suppress(OSError):
        os.rmdir(directory)
