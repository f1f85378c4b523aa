"""Process-tree plumbing for the runner: /proc walking, pid-reuse-safe signals, reaping.

Linux only in substance (protocol reference §9 was measured there); on other systems every
scan is empty and `make_subreaper` is a no-op, so the runner degrades to killing its own
child. A process is named by ``(pid, starttime)``: the kernel's start time in clock ticks
does not repeat for a reused pid, so a record taken before a kill never hits a stranger.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable, Collection, Iterable

import attrs

__all__ = [
    "ProcInfo", "descendants", "env_value", "is_same", "kill_group", "kill_verified",
    "leftovers", "live_descendants", "make_subreaper", "read_info", "reap_child", "reap_exited",
    "same_in", "scan", "signal_verified",
]

_PROC = "/proc"
_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


@attrs.frozen
class ProcInfo:
    """The fields of ``/proc/<pid>/stat`` the runner needs."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    starttime: int  # clock ticks after boot; with pid it identifies one process

    @property
    def alive(self) -> bool:
        # Zombies (Z) and dying tasks (X) take no more signals; they only need reaping.
        return self.state not in ("Z", "X")


def read_info(pid: int) -> ProcInfo | None:
    """The stat record of ``pid``, or None when it does not exist (or /proc is absent)."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses; everything after the LAST ')' is
    # space-separated, starting at field 3 (state). starttime is field 22.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return ProcInfo(
            pid=pid,
            state=fields[0].decode("ascii", "replace"),
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            starttime=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def scan() -> dict[int, ProcInfo]:
    """Every process visible in /proc, by pid (threads are not listed at the top level)."""
    try:
        names = os.listdir(_PROC)
    except OSError:
        return {}
    table: dict[int, ProcInfo] = {}
    for name in names:
        if name.isdigit() and (info := read_info(int(name))) is not None:
            table[info.pid] = info
    return table


def descendants(roots: Iterable[int], table: dict[int, ProcInfo]) -> list[ProcInfo]:
    """All processes whose ppid chain in ``table`` reaches one of ``roots`` (roots excluded)."""
    children: dict[int, list[ProcInfo]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info)
    found: list[ProcInfo] = []
    seen = set(roots)
    todo = list(seen)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child.pid not in seen:
                seen.add(child.pid)
                found.append(child)
                todo.append(child.pid)
    return found


def live_descendants(pid: int) -> list[int]:
    """Pids of the non-zombie processes below ``pid`` right now (by ppid chains)."""
    return [info.pid for info in descendants([pid], scan()) if info.alive]


def is_same(info: ProcInfo) -> bool:
    """True while the process ``info`` recorded still exists (zombie included)."""
    now = read_info(info.pid)
    return now is not None and now.starttime == info.starttime


def same_in(table: dict[int, ProcInfo], info: ProcInfo) -> ProcInfo | None:
    """The current record in ``table`` of the process ``info`` recorded, if it still exists."""
    now = table.get(info.pid)
    return now if now is not None and now.starttime == info.starttime else None


def signal_verified(info: ProcInfo, sig: int) -> bool:
    """Send ``sig`` to the process ``info`` recorded, never to a later owner of its pid.

    With a pidfd the check and the signal refer to one process: the fd pins it, and a
    matching starttime read after opening proves the pid was not reused in between.
    """
    if sys.platform == "linux" and hasattr(signal, "pidfd_send_signal"):
        try:
            fd = os.pidfd_open(info.pid)
        except ProcessLookupError:
            return False
        except OSError:
            pass  # kernel without pidfd (< 5.3): fall back to check-then-kill below
        else:
            try:
                if not is_same(info):
                    return False
                signal.pidfd_send_signal(fd, sig)
                return True
            except (ProcessLookupError, PermissionError):
                return False
            finally:
                os.close(fd)
    if not is_same(info):
        return False
    try:
        os.kill(info.pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pgid: int, sig: int) -> None:
    """Signal a process group, never ours or init's; a vanished group is not an error."""
    if pgid <= 1 or pgid == os.getpgrp():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_verified(
    infos: Iterable[ProcInfo], sig: int, *, spare_groups: Collection[int]
) -> list[ProcInfo]:
    """Signal each recorded process that still exists, then their process groups (a child
    forked after the scan shares its parent's group) except ``spare_groups``; returns the
    processes signalled."""
    hit = [info for info in infos if signal_verified(info, sig)]
    for pgid in {info.pgid for info in hit} - set(spare_groups):
        kill_group(pgid, sig)
    return hit


def env_value(pid: int, key: str) -> str | None:
    """``key`` from the environment ``pid`` was started with (None if unreadable or unset)."""
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    prefix = key.encode() + b"="
    for entry in data.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode("utf-8", "replace")
    return None


def reap_child(pid: int) -> bool:
    """Reap ``pid`` if it is our exited child. Per pid only: waitpid(-1) would steal the
    exit status of children trio is waiting for."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def leftovers(
    table: dict[int, ProcInfo],
    recorded: Iterable[ProcInfo],
    key: str,
    claim: Callable[[str], bool],
    *,
    skip: Collection[int],
) -> list[ProcInfo]:
    """Live processes to kill: those in ``recorded`` that still exist, our children (not in
    ``skip``) whose environment's ``key`` is claimed, and everything below them."""
    me = os.getpid()
    roots = [now for info in recorded if (now := same_in(table, info)) is not None]
    for info in table.values():
        if info.ppid == me and info.alive and info.pid not in skip:
            owner = env_value(info.pid, key)
            if owner is not None and claim(owner):
                roots.append(info)
    found = {info.pid: info for info in roots}
    found.update((info.pid, info) for info in descendants(found, table))
    return [info for info in found.values() if info.alive]


def reap_exited(
    table: dict[int, ProcInfo], killed: Iterable[ProcInfo], *, skip: Collection[int],
    orphans: bool,
) -> None:
    """Reap our exited children that no one else waits for: those in ``killed`` and, with
    ``orphans``, any outside our session (orphans reparented to us that died on their own).
    Children in our session and pids in ``skip`` (trio's) are left to their owners."""
    me, my_sid = os.getpid(), os.getsid(0)
    ours = {(info.pid, info.starttime) for info in killed}
    for info in table.values():
        if info.ppid != me or info.alive or info.pid in skip:
            continue
        if (info.pid, info.starttime) in ours or (orphans and info.sid != my_sid):
            reap_child(info.pid)


@functools.cache
def make_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux >= 3.4); once.

    Orphans of a CLI (a Bash-tool tree after the CLI died) are then reparented to us
    instead of init, where the runner can still find and kill them.
    """
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
