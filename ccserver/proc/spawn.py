"""Run one Claude Code CLI process; leave nothing behind, under cancellation too.

Theory of operation (protocol reference §9). The CLI's Bash tool starts children in
sessions of their own: ``killpg`` on the CLI's group misses them, SIGTERM/SIGKILL of the
CLI orphans them, and SIGINT makes the CLI end the turn and kill its tool tree itself. So
teardown records the CLI's descendants from /proc, sends SIGINT, waits ``kill_grace``,
SIGTERMs then SIGKILLs its group, and sweeps. The sweep works after a normal exit too: we
are a child subreaper, so orphans are reparented to us, and each CLI gets a per-run token
in ``CCSERVER_RUN_ID`` that its descendants inherit. Children of ours with a finished run's
token are killed and reaped with their subtrees; a concurrent run's processes (live token)
and children the gateway started otherwise (no token) are never touched. What outlives
the gateway itself is `guard`'s business: each run also carries the gateway's tag.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import trio

from ccproto import Invocation

from ..errors import raise_single
from . import tree as procs
from .cli import STDERR_SETTLE, CLIProcess
from .guard import GATEWAY_MARKER_ENV, gateway_tag, start_watchdog, watchdog_pid
from .tree import ProcInfo, live_descendants

__all__ = [
    "RUN_MARKER_ENV", "CLIProcess", "ProcessStartError", "live_descendants", "open_cli",
    "sweep_orphans",
]

RUN_MARKER_ENV = "CCSERVER_RUN_ID"
_TERM_GRACE = 0.5  # SIGTERM -> SIGKILL: the CLI exits on SIGTERM in ~0.03 s (§9)
_KILL_WAIT = 2.0  # SIGKILL -> reaped; only a process stuck in the kernel takes longer
_SWEEP_DEADLINE = 2.0  # bound on killing and reaping leftovers
_POLL = 0.01

# Every run in flight: token -> CLI pid (None while it is being spawned).
_live: dict[str, int | None] = {}


class ProcessStartError(Exception):
    """The CLI could not be started: executable missing or not executable, bad cwd, no fds."""


@asynccontextmanager
async def open_cli(
    inv: Invocation,
    *,
    kill_grace: float = 2.0,
    stderr_tail_bytes: int = 8192,
    keep_stdin: bool = False,
) -> AsyncIterator[CLIProcess]:
    """Start ``inv`` and yield the running `CLIProcess`.

    ``inv.stdin`` is written and stdin closed, unless ``keep_stdin``: then the caller
    writes turns with `CLIProcess.send` and the CLI lives until stdin closes.

    Resource handling: leaving the block in any way (normally, by exception, by
    cancellation) stops the CLI and every process it started, and reaps them, before the
    exit returns; that takes at most about ``kill_grace`` + 5 s.

    Raises:
        ProcessStartError: the executable could not be started.
    """
    procs.make_subreaper()  # once per process (cached)
    start_watchdog()  # kills this run's processes if the gateway dies (guard.py)
    token = secrets.token_hex(8)
    # Registered before the spawn: the new child's token must never look like a finished run's.
    _live[token] = None
    try:
        async with trio.open_nursery() as nursery:
            process = await _spawn(inv, token)
            _live[token] = process.pid
            cli = CLIProcess(process, stderr_tail_bytes)
            try:
                if not keep_stdin:
                    nursery.start_soon(_feed_stdin, process.stdin, inv.stdin)
                nursery.start_soon(cli._drain_stderr)
                yield cli
            finally:
                # Shielded (each step has its own deadline): a client disconnect, timeout or
                # server shutdown must not leave the CLI or its tools running.
                with trio.CancelScope(shield=True):
                    await _teardown(process, token, kill_grace)
                    with trio.move_on_after(STDERR_SETTLE):  # deadline: last stderr bytes
                        await cli._stderr_done.wait()
                    for stream in (process.stdin, process.stdout, process.stderr):
                        if stream is not None:
                            await trio.aclose_forcefully(stream)
    except BaseExceptionGroup as group:
        # The background tasks swallow their expected errors, so a one-exception group holds
        # the block's own exception (or Cancelled): re-raise that very object, so that
        # callers see `except ValueError` work and asynccontextmanager recognises it
        # (errors/groups.py, group policy: one level, the same object, its own __context__).
        raise_single(group)
        raise
    finally:
        del _live[token]


async def sweep_orphans() -> None:
    """Kill and reap leftovers of finished runs now (each run also sweeps when it ends)."""
    # Shielded with its own deadline inside: a half-done sweep would leave zombies.
    with trio.CancelScope(shield=True):
        await _sweep(None, ())


async def _spawn(inv: Invocation, token: str) -> trio.Process:
    try:
        return await trio.lowlevel.open_process(
            list(inv.argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**inv.env, RUN_MARKER_ENV: token, GATEWAY_MARKER_ENV: gateway_tag()},
            cwd=inv.cwd,
            start_new_session=True,  # its own group: SIGTERM/SIGKILL reach its plain children
        )
    except OSError as exc:
        raise ProcessStartError(f"{inv.argv[0]}: {exc.strerror or exc}") from exc


async def _feed_stdin(stream: trio.abc.SendStream | None, data: bytes) -> None:
    assert stream is not None
    try:
        if data:
            await stream.send_all(data)
        # A complete line is a whole one-shot turn: EOF lets the CLI answer and exit (§6.2).
        if not data or data.endswith(b"\n"):
            await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the CLI exited without reading it all; its exit status tells why


async def _teardown(process: trio.Process, token: str, kill_grace: float) -> None:
    recorded: list[ProcInfo] = []
    if process.returncode is None:
        # Record the tree first: once the CLI dies its children are reparented and the
        # ppid chains that lead back to it are gone.
        recorded = procs.descendants([process.pid], procs.scan())
        async with trio.open_nursery() as nursery:
            # Nobody reads stdout any more: discard it, or a CLI blocked writing to a full
            # pipe could not act on SIGINT (nor write its last lines) and would need SIGKILL.
            nursery.start_soon(_discard, process.stdout)
            process.send_signal(signal.SIGINT)
            # Deadline: SIGINT grace, the CLI ends the turn and kills its Bash-tool tree (§9).
            with trio.move_on_after(kill_grace):
                await process.wait()
            for sig, grace in ((signal.SIGTERM, _TERM_GRACE), (signal.SIGKILL, _KILL_WAIT)):
                if process.returncode is not None:
                    break
                procs.kill_group(process.pid, sig)  # the CLI leads its group (new session)
                with trio.move_on_after(grace):  # deadline: this signal's grace period
                    await process.wait()
            nursery.cancel_scope.cancel()
    await _sweep(token, recorded)


async def _discard(stream: trio.abc.ReceiveStream | None) -> None:
    assert stream is not None
    try:
        while await stream.receive_some(65536):
            pass
    except (trio.BusyResourceError, trio.ClosedResourceError, trio.BrokenResourceError):
        pass  # a task of the caller's still reads it, or it is closed: not ours to drain


async def _sweep(token: str | None, recorded: Iterable[ProcInfo]) -> None:
    """Kill and reap ``recorded``, our children with this or a finished run's token, and
    everything below them."""

    def claim(owner: str) -> bool:
        return owner == token or owner not in _live

    killed: set[ProcInfo] = set()  # as recorded when signalled
    # Deadline: a process stuck in uninterruptible sleep must not hold the request forever.
    with trio.move_on_after(_SWEEP_DEADLINE):
        while True:
            table, live_pids = procs.scan(), {pid for pid in _live.values() if pid is not None}
            # Our other exited children are reaped too, but never while a spawn is in
            # progress (its pid is not registered yet), never in our own session, and never
            # the watchdog: its Popen reaps it, and must see it die to start another.
            watchdog = watchdog_pid()
            procs.reap_exited(table, killed, orphans=None not in _live.values(),
                              skip=live_pids if watchdog is None else {*live_pids, watchdog})
            targets = procs.leftovers(table, recorded, RUN_MARKER_ENV, claim, skip=live_pids)
            # Killed but not yet reaped: a zombie waits for its parent, maybe a dying leftover.
            pending = any(procs.same_in(table, info) is not None for info in killed)
            if not targets and not pending:
                return
            killed.update(procs.kill_verified(targets, signal.SIGKILL, spare_groups=live_pids))
            await trio.sleep(_POLL)
