"""Hosting the pool's CLI processes: starting one in the pool's nursery, and ending it by
retiring (EOF on stdin, so it exits by itself) or killing it.

`Pool` builds on this; what it adds is which process serves which turn. The pool's own
bookkeeping of idle processes is reached through `_drop`.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter

import trio

from ccproto import CLIStream, Invocation

from ..proc.reading import RunLimits
from ..proc.spawn import open_cli
from .pooled import Worker, shape_of

__all__ = ["Hosting"]


class Hosting:
    """Every CLI process hosted, from spawn until reaped."""

    def __init__(self, limits: RunLimits) -> None:
        self.limits = limits
        self._nursery: trio.Nursery | None = None
        self._spawning = 0  # warm processes being started (for the refill's arithmetic)
        self._live: set[Worker] = set()  # every process hosted, from spawn until reaped
        # Retired processes still exiting, by conversation: the next turn waits for them.
        self._exiting: dict[str, Worker] = {}
        self.counters: Counter[str] = Counter()

    def _drop(self, worker: Worker) -> None:
        """Forget ``worker`` as an idle process: it is retired, killed or gone."""
        raise NotImplementedError

    async def stop(self, worker: Worker, *, kill: bool = False) -> None:
        """Retire (or kill) ``worker`` and wait until it is gone, its session files complete."""
        with trio.CancelScope(shield=True):
            if kill:
                self._kill(worker)
            else:
                self._retire(worker)
            await worker.dead.wait()

    async def _spawn(self, inv: Invocation, conversation_id: str, session_id: str) -> Worker:
        assert self._nursery is not None, "Pool.run() is not running"
        worker = Worker(shape=shape_of(inv), conversation_id=conversation_id,
                        session_id=session_id, cwd=inv.cwd,
                        stream=CLIStream(max_line_size=self.limits.max_line_bytes))
        self._spawning += 1
        self._live.add(worker)
        try:
            await self._nursery.start(self._host, worker, inv)
        except BaseException:
            self._live.discard(worker)
            raise
        finally:
            self._spawning -= 1
        return worker

    async def _host(self, worker: Worker, inv: Invocation,
                    task_status: trio.TaskStatus[None]) -> None:
        try:
            with worker.scope:
                async with open_cli(inv, kill_grace=self.limits.kill_grace,
                                    stderr_tail_bytes=self.limits.stderr_tail_bytes,
                                    keep_stdin=True) as proc:
                    worker.proc = proc
                    task_status.started()
                    # Lives until stdin is closed (retired) or the scope cancelled (killed);
                    # leaving open_cli reaps it and anything it started.
                    await proc.wait()
        finally:
            worker.dead.set()
            self._live.discard(worker)
            if not worker.taken:
                _remove_if_empty(worker.cwd)  # made for a conversation that never came
            self._drop(worker)
            if self._exiting.get(worker.conversation_id) is worker:
                del self._exiting[worker.conversation_id]

    def _retire(self, worker: Worker) -> None:
        """Close stdin: the CLI exits by itself and flushes its transcript (§6.2)."""
        self._drop(worker)
        self.counters["retired"] += 1
        if not worker.dead.is_set():
            self._exiting[worker.conversation_id] = worker
        if self._nursery is not None:
            self._nursery.start_soon(self._close_or_kill, worker)
        else:
            worker.scope.cancel()

    async def _close_or_kill(self, worker: Worker) -> None:
        """EOF on stdin; a CLI that has not exited a grace period later is killed."""
        if worker.proc is not None:
            await worker.proc.close_stdin()
        with trio.move_on_after(self.limits.kill_grace + 1):
            await worker.dead.wait()
            return
        self._kill(worker)

    def _kill(self, worker: Worker) -> None:
        self._drop(worker)
        self.counters["killed"] += 1
        worker.scope.cancel()


def _remove_if_empty(directory: str) -> None:
    # Only a conversation's own directory (the shared workspace root stays), and rmdir
    # only: never anything the CLI may have written there.
    if os.path.basename(directory).startswith("conv_"):
        with contextlib.suppress(OSError):
            os.rmdir(directory)
