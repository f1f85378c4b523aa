"""ccserver.proc.guard: what a dead gateway leaves behind is killed, by its watchdog at once
and by the next gateway's start-up sweep.

A "gateway" here is a child Python process that runs `open_cli` on the stand-in CLI with a
Bash-like tool (``--tool``: sh + sleep in a session of their own) and is then SIGKILLed.
Waits are generous bounds on polling, never timing assertions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ccserver.proc.guard import GATEWAY_MARKER_ENV, gateway_tag, stop_predecessors
from ccserver.proc.tree import ProcInfo, is_same, read_info

pytestmark = [pytest.mark.reliability]

STANDIN = Path(__file__).resolve().parents[1] / "support" / "standin_cli.py"
BOUND = 20.0  # seconds; a bound on polling for a loaded box, not an expected duration

# The stand-in's output (``child <pid>``, ``grandchild <pid>``) goes to the test's pipe,
# plus a ``cli <pid>`` line; then the "gateway" waits to be killed.
_GATEWAY = """
import os, sys, trio
from ccproto import Invocation
from ccserver.proc.spawn import open_cli

async def main():
    inv = Invocation(argv=(sys.executable, sys.argv[1], "--tool", "--hang"),
                     env=dict(os.environ), stdin=b"", cwd="/")
    async with open_cli(inv) as proc:
        print("cli", proc.pid, flush=True)
        while True:
            chunk = await proc.receive_some()
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            if not chunk:
                return  # the stand-in died: the test sees EOF and fails instead of hanging

trio.run(main)
"""


def wait_for(predicate: Callable[[], bool]) -> bool:
    until = time.monotonic() + BOUND
    while not predicate():
        if time.monotonic() > until:
            return False
        time.sleep(0.05)
    return True


def alive(info: ProcInfo) -> bool:
    now = read_info(info.pid)
    return now is not None and now.starttime == info.starttime and now.alive


def test_watchdog_kills_the_runs_of_a_sigkilled_gateway_and_their_tools() -> None:
    gateway = subprocess.Popen([sys.executable, "-c", _GATEWAY, str(STANDIN)],
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert gateway.stdout is not None
    found: dict[str, ProcInfo] = {}
    try:
        for line in gateway.stdout:
            name, _, value = line.decode().partition(" ")
            if name in ("cli", "child", "grandchild") and (info := read_info(int(value))):
                found[name] = info
            if len(found) == 3:
                break
        assert set(found) == {"cli", "child", "grandchild"}
        # The tool lives in a session of its own, out of reach of a kill of the CLI's group.
        assert found["child"].sid != found["cli"].sid
    finally:
        gateway.kill()
        gateway.wait()
    # Nothing of the dead gateway's is left running: not the CLI, not its tool.
    assert wait_for(lambda: not any(alive(info) for info in found.values())), found


# An idle CLI: reads stdin until EOF, then takes a moment to write its transcript (the
# marker file) and exits, as the real CLI does when its stdin closes.
_IDLE_CLI = """
import sys, time
sys.stdin.buffer.read()
time.sleep(0.5)
open(sys.argv[1], "w").write("flushed")
"""

_IDLE_GATEWAY = """
import os, sys, trio
from ccproto import Invocation
from ccserver.proc.spawn import open_cli

async def main():
    inv = Invocation(argv=(sys.executable, "-c", sys.argv[1], sys.argv[2]),
                     env=dict(os.environ), stdin=b"", cwd="/")
    async with open_cli(inv, keep_stdin=True) as proc:
        print("cli", proc.pid, flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


def test_an_idle_cli_exits_by_itself_when_its_gateway_is_sigkilled(tmp_path: Path) -> None:
    # The gateway's death closes the CLI's stdin; the watchdog's grace lets it finish
    # writing (its transcript, here a marker) instead of killing it mid-write.
    marker = tmp_path / "transcript"
    gateway = subprocess.Popen([sys.executable, "-c", _IDLE_GATEWAY, _IDLE_CLI, str(marker)],
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert gateway.stdout is not None
    try:
        name, _, pid = gateway.stdout.readline().decode().partition(" ")
        assert name == "cli"
        cli = read_info(int(pid))
        assert cli is not None
    finally:
        gateway.kill()
        gateway.wait()
    assert wait_for(lambda: not alive(cli))
    assert marker.read_text() == "flushed"


@pytest.fixture
def dead_tag() -> str:
    """The tag of a gateway that has exited."""
    gone = subprocess.Popen(["sleep", "60"])
    tag = gateway_tag(gone.pid)
    gone.kill()
    gone.wait()
    return tag


async def test_start_up_sweep_kills_only_what_dead_gateways_left(dead_tag: str) -> None:
    def start(tag: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["sleep", "300"], env={**os.environ, GATEWAY_MARKER_ENV: tag},
                                start_new_session=True)

    stray, ours, foreign = start(dead_tag), start(gateway_tag()), start("not-a-gateway")
    try:
        infos = {p: read_info(p.pid) for p in (stray, ours, foreign)}
        assert await stop_predecessors() == 1
        assert stray.wait(BOUND) == -signal.SIGKILL
        assert ours.poll() is None and foreign.poll() is None  # a live gateway's, or no tag
        assert all(info is not None and is_same(info) for p, info in infos.items()
                   if p is not stray)
    finally:
        for p in (stray, ours, foreign):
            p.kill()
            p.wait()
