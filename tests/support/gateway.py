"""Start the real gateway (`python -m ccserver`) as a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import attrs

from ccserver.proc.tree import env_value

__all__ = [
    "RUN_TAG_ENV", "WATCHDOG", "Gateway", "process_tree", "processes", "running_gateway", "tagged",
    "wait_until",
]

_LISTENING = re.compile(r"listening on (http://[\d.]+:(\d+))")


@attrs.define
class Gateway:
    proc: subprocess.Popen[bytes]
    base_url: str  # http://127.0.0.1:PORT (no /v1)
    log: list[str]

    @property
    def v1(self) -> str:
        return self.base_url + "/v1"


def processes() -> tuple[dict[int, int], dict[int, str]]:
    """Every live process on the machine: (pid -> ppid, pid -> command line)."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue  # a zombie is dead; if it lingers, the reaping tests catch it
        parents[int(entry)] = int(fields[1])
        cmdlines[int(entry)] = cmd.decode(errors="replace").strip()
    return parents, cmdlines


#: How the gateway's watchdog (ccserver/proc/guard.py) shows in the process table.
WATCHDOG = "-m ccserver.proc.guard"


#: Set by tests/conftest.py for the whole test run; every process the tests start inherits it
#: (gateways, fake APIs, CLIs, their tools), so the run's leftovers can be told from those
#: of test runs beside it. Not CCSERVER_-prefixed: the watchdog drops those from its own.
RUN_TAG_ENV = "CCTEST_RUN"


def tagged(value: str, *, skip: int) -> dict[int, str]:
    """Every live process but ``skip`` whose environment has ``RUN_TAG_ENV=value``.

    Nor ``skip``'s own watchdog: an app served in-process makes the test process a gateway,
    whose watchdog lives as long as it does and goes when it exits.
    """
    _, cmdlines = processes()
    own = f"{WATCHDOG} {skip}-"
    return {pid: cmd for pid, cmd in cmdlines.items()
            if pid != skip and own not in cmd and env_value(pid, RUN_TAG_ENV) == value}


def process_tree(root: int, *, watchdog: bool = False) -> dict[int, str]:
    """Every live descendant of ``root`` (by ppid chains): pid -> command line.

    The gateway's watchdog lives as long as the gateway and is no run's leftover, so it
    counts only with ``watchdog=True``.
    """
    parents, cmdlines = processes()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == root and not watchdog and WATCHDOG in cmdlines[pid]:
                continue
            if ppid == parent and pid not in found:
                found[pid] = cmdlines[pid]
                frontier.append(pid)
    return found


def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return bool(predicate())  # type: ignore[operator]


@contextmanager
def running_gateway(env: Mapping[str, str], *args: str, timeout: float = 20.0,
                    module: str = "ccserver") -> Iterator[Gateway]:
    """``python -m ccserver`` (or ``module``, which serves as it does: bench/phases.py)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", *args],
        env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    log: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            log.append(line)
            m = _LISTENING.search(line)
            if m and not found.is_set():
                url.append(m.group(1))
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not found.wait(timeout):
            raise RuntimeError("gateway did not start:\n" + "\n".join(log))
        yield Gateway(proc=proc, base_url=url[0], log=log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
