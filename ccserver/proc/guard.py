"""Tie every CLI's life to the gateway's, and clean up after a gateway that died.

Theory of operation. Teardown in `spawn` stops a CLI and its tools whenever the gateway
lives to run it; a gateway killed by SIGKILL (or the OOM killer) runs nothing. Its CLIs
live in sessions of their own and would be reparented to init, finish their turn and
append it to a transcript the restarted gateway has rolled back, cutting earlier turns off
the next resume. Two mechanisms prevent that:

- Every process a CLI run starts carries ``CCSERVER_GATEWAY=<pid>-<starttime>`` of its
  gateway in its environment (its tools inherit it, whatever session they move to).
- A watchdog (``python -m ccserver.proc.guard TAG``, one per gateway process, started
  once, in a session of its own so terminal signals pass it by) reads a pipe whose only
  write end the gateway holds. When the gateway dies, the kernel closes that end; the
  watchdog reads EOF, gives the gateway's CLIs `EXIT_GRACE` to exit by themselves, then
  SIGKILLs every process with the tag until none is left. The grace is for the idle ones:
  the gateway's death closed their stdin too, so they exit and flush their transcripts,
  and a turn that was answered is never lost. A CLI still in a turn (and its tools) does
  not stop on EOF and is killed when the grace ends.
- At start-up (`stop_predecessors`, before any conversation is touched) the gateway kills
  every process whose tag names a gateway that no longer exists, after the same grace:
  the watchdog may have died with its gateway (a kill of the whole group, a reboot of the
  container's init). Either way no straggler writes to a transcript after the new
  gateway rolls it back: roll-backs wait for the sweep.

Why not ``PR_SET_PDEATHSIG``: it fires on the death of the *thread* that forked, and trio
spawns from a worker thread of its cache, which exits after a few idle seconds, killing a
healthy CLI; and it would reach only the CLI, not its tools in their own sessions. The
watchdog is one process per gateway, so a CLI's start costs nothing more than an env var.

Cost, measured on the 2-core test box: a CLI start pays ~15 us (reading our own tag, and
checking the watchdog is alive); the watchdog's spawn is ~1 ms once per gateway (it then
takes ~0.25 s to import, off every request's path: EOF waits in the pipe until it reads);
the start-up sweep reads ~90 processes' environments in ~5 ms; from the gateway's SIGKILL
to its CLI and tool tree being dead took 3-9 ms after the grace.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import trio

from . import tree as procs

log = logging.getLogger("ccserver.guard")

__all__ = ["EXIT_GRACE", "GATEWAY_MARKER_ENV", "gateway_tag", "kill_tagged",
           "start_watchdog", "stop_predecessors", "tag_is_dead", "watchdog_pid"]

GATEWAY_MARKER_ENV = "CCSERVER_GATEWAY"
_POLL = 0.01
_KILL_DEADLINE = 10.0  # bound on one kill loop: only a process stuck in the kernel lasts
#: Seconds a dead gateway's processes get to exit by themselves before they are killed:
#: an idle CLI told EOF flushes its transcript and exits well within it (~0.3 s measured
#: for the flush), so a turn that was answered survives the gateway's SIGKILL.
EXIT_GRACE = 3.0
_ROOT = str(Path(__file__).resolve().parents[2])  # the directory that holds ccserver/

# The running watchdog and the write end of its pipe (kept open for our whole life).
_watchdog: subprocess.Popen[bytes] | None = None
_pipe: int | None = None


def gateway_tag(pid: int | None = None) -> str:
    """``<pid>-<starttime>`` of a process (ours by default): unique across pid reuse."""
    pid = os.getpid() if pid is None else pid
    info = procs.read_info(pid)
    return f"{pid}-{info.starttime if info is not None else 0}"


def tag_is_dead(tag: str) -> bool:
    """True when the gateway ``tag`` names exists no more (a zombie counts as dead)."""
    pid, _, start = tag.partition("-")
    if not (pid.isdigit() and start.isdigit()):
        return False  # not one of ours: leave it alone
    info = procs.read_info(int(pid))
    if info is None and os.path.lexists(f"/proc/{pid}"):
        return False  # there, but unreadable (hidepid, another user's): not known dead
    return info is None or info.starttime != int(start) or not info.alive


def kill_tagged(condemned: Callable[[str], bool], *, grace: float = 0.0,
                deadline: float = _KILL_DEADLINE) -> int:
    """SIGKILL every live process whose gateway tag is ``condemned`` until none is left, or
    ``deadline`` seconds passed; returns how many were killed. Blocking.

    For the first ``grace`` seconds nothing is killed: the processes may exit by themselves.
    """
    me = os.getpid()
    killed: set[tuple[int, int]] = set()
    spare_until = time.monotonic() + grace
    # Deadline: a process in uninterruptible sleep must not hold the caller forever.
    until = spare_until + deadline
    while True:
        targets = []
        for info in procs.scan().values():
            if info.pid == me or not info.alive:
                continue  # a zombie writes nothing more; its parent (or init) reaps it
            tag = procs.env_value(info.pid, GATEWAY_MARKER_ENV)
            if tag is not None and condemned(tag):
                targets.append(info)
        if not targets or time.monotonic() > until:
            return len(killed)
        if time.monotonic() < spare_until:
            time.sleep(_POLL)
            continue
        for info in targets:
            if procs.signal_verified(info, signal.SIGKILL):
                killed.add((info.pid, info.starttime))
        time.sleep(_POLL)


def watchdog_pid() -> int | None:
    """The watchdog's pid while it is ours to reap (through its `Popen`), else None."""
    return _watchdog.pid if _watchdog is not None and _watchdog.returncode is None else None


def start_watchdog() -> None:
    """Start this process's watchdog, or a new one if it died; cheap when it runs."""
    global _watchdog, _pipe
    if sys.platform != "linux" or (_watchdog is not None and _watchdog.poll() is None):
        return
    if _pipe is not None:
        os.close(_pipe)
        _pipe = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCSERVER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
    try:
        read_end, _pipe = os.pipe()  # both close-on-exec: no CLI inherits the write end
        try:
            _watchdog = subprocess.Popen(
                [sys.executable, "-m", "ccserver.proc.guard", gateway_tag()],
                stdin=read_end, stdout=subprocess.DEVNULL, env=env, cwd="/",
                start_new_session=True,  # Ctrl-C of the gateway's group must not end it
            )
        finally:
            os.close(read_end)
    except OSError as exc:
        # Out of fds or processes: the run goes on unguarded (the next start tries again,
        # and a restarted gateway's sweep still cleans up) rather than failing a request.
        log.warning("could not start the CLI watchdog: %s", exc)


async def stop_predecessors() -> int:
    """Kill what dead gateways left running (CLIs and their tools); returns how many.

    Call before any transcript is read or rolled back: once it returns, no straggler can
    append to one."""
    return await trio.to_thread.run_sync(lambda: kill_tagged(tag_is_dead, grace=EXIT_GRACE))


def _watch(tag: str) -> None:
    """The watchdog: wait for EOF on stdin (the gateway died or stopped), then kill."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while True:
        try:
            if not os.read(0, 4096):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    kill_tagged(lambda owner: owner == tag, grace=EXIT_GRACE)


if __name__ == "__main__":
    _watch(sys.argv[1])
