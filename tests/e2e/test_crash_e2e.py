"""A gateway SIGKILLed mid-turn, through the real gateway, CLI and fake upstream: nothing it
started lives on (checked in the process table), and after a restart on the same data dir
the conversation still holds its earlier turns (checked in the upstream request).

The tester's report: the dead gateway's CLIs (and their Bash tools) ran on, finished their
turn and appended it to a transcript the new gateway had rolled back; the next resume then
lost turn 1.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ccserver.proc.tree import ProcInfo, read_info, signal_verified
from tests.support.e2e import client, gateway_env, upstream_turns
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import process_tree, running_gateway, wait_until

pytestmark = [pytest.mark.reliability]

SLEEP = "sleep 287.5"  # a Bash tool that would outlive the test by far; unique in the table


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crash")


@pytest.fixture(scope="module")
def fake(tmp: Path) -> Iterator[FakeAPI]:
    with running_fakeapi(tmp) as api:
        yield api


def alive(info: ProcInfo) -> bool:
    now = read_info(info.pid)
    return now is not None and now.starttime == info.starttime and now.alive


@pytest.fixture
def survivors() -> Iterator[list[ProcInfo]]:
    """Processes the test records; any still alive at the end is killed (a failing run
    must not leave a 287 s sleep and a CLI behind)."""
    recorded: list[ProcInfo] = []
    yield recorded
    for info in recorded:
        signal_verified(info, signal.SIGKILL)  # never a later owner of the pid


def test_sigkilled_gateway_leaves_nothing_running_and_loses_only_the_turn_in_flight(
        fake: FakeAPI, tmp: Path, survivors: list[ProcInfo]) -> None:
    env = gateway_env(fake, tmp, claude__allowed_tools='["Bash(sleep *)"]',
                      pool__idle_seconds="0")
    with running_gateway(env) as gw:
        first = client(gw).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content":
                                       'My code is K9-x [[fake {"text": "noted"}]]'}])
        conversation = first.conversation_id  # type: ignore[attr-defined]
        script = {"steps": [{"tool_use": {"name": "Bash", "input": {"command": SLEEP}}},
                            {"text": "slept"}]}
        body = {"model": "sonnet", "stream": True, "conversation_id": conversation,
                "messages": [{"role": "user", "content": f"Sleep [[fake {json.dumps(script)}]]"}]}

        def sleeping() -> bool:
            return any(SLEEP in cmd for cmd in process_tree(gw.proc.pid).values())

        with httpx.Client(timeout=60) as h, h.stream("POST", f"{gw.v1}/chat/completions",
                                                     json=body) as response:
            assert response.status_code == 200
            assert wait_until(sleeping, timeout=30)
            survivors.extend(info for pid in process_tree(gw.proc.pid, watchdog=True)
                             if (info := read_info(pid)) is not None)
            assert any(SLEEP in cmd for cmd in process_tree(gw.proc.pid).values())
            gw.proc.kill()  # SIGKILL mid-turn: the gateway runs no teardown
            gw.proc.wait()
            # The client sees its stream end without a [DONE]: the turn in flight is lost.
            with pytest.raises(httpx.HTTPError):
                for _ in response.iter_lines():
                    pass
    # The CLIs (the bound one and a warm one), the Bash tool and its sleep all died with
    # the gateway. A generous bound on polling: they go within a moment.
    assert wait_until(lambda: not any(alive(info) for info in survivors), timeout=30), [
        info for info in survivors if alive(info)]

    with running_gateway(env) as gw:
        third = client(gw).chat.completions.create(
            model="sonnet", extra_body={"conversation_id": conversation},
            messages=[{"role": "user", "content": 'What is my code? [[fake {"text": "K9-x"}]]'}])
        assert third.choices[0].message.content == "K9-x"
    turns = upstream_turns(fake, "What is my code?")
    # Turn 1 is there; the half-done turn 2 was rolled back, not glued to turn 3.
    assert turns[:2] == [("user", "My code is K9-x [[fake {\"text\": \"noted\"}]]"),
                         ("assistant", "noted")]
    assert [role for role, _ in turns] == ["user", "assistant", "user"]
    assert "Sleep" not in json.dumps(turns)
