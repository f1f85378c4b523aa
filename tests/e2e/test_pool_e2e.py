"""Warm and conversation-bound CLI processes, the response cache and start retries, through
the real gateway, CLI and fake upstream; the process table is checked for what is left."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.e2e import client, gateway_env, upstream_turns
from tests.support.fakeapi import CLAUDE_BIN, FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, process_tree, processes, running_gateway, wait_until


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pool")


@pytest.fixture(scope="module")
def fake(tmp: Path) -> Iterator[FakeAPI]:
    with running_fakeapi(tmp) as api:
        yield api


def env_for(fake: FakeAPI, tmp: Path, **settings: str) -> dict[str, str]:
    return gateway_env(fake, tmp, claude__allowed_tools='["Bash(sleep *)"]', **settings)


@pytest.fixture(scope="module")
def gw(fake: FakeAPI, tmp: Path) -> Iterator[Gateway]:
    with running_gateway(env_for(fake, tmp, pool__size="1")) as gateway:
        yield gateway


def say(text: str, **script: object) -> str:
    return f"{text} [[fake {json.dumps(script or {'text': text.lower()})}]]"


def pool(gw: Gateway) -> dict[str, int]:
    return httpx.get(f"{gw.base_url}/stats").json()["pool"]  # type: ignore[no-any-return]


def clis(gw: Gateway) -> set[int]:
    """The gateway's CLI processes: its own children (a CLI's helpers, e.g. its ripgrep,
    are theirs)."""
    parents, cmdlines = processes()
    return {pid for pid, ppid in parents.items()
            if ppid == gw.proc.pid and "claude" in cmdlines[pid]}


def test_warm_process_serves_a_new_conversation_then_stays_bound(
        fake: FakeAPI, gw: Gateway) -> None:
    assert wait_until(lambda: pool(gw)["warm"] == 1, timeout=20)
    warm = clis(gw)
    assert len(warm) == 1
    time.sleep(1)  # a process needs a moment to boot before it is fast
    c = client(gw)
    first = c.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": say("WARM-1")}])
    assert first.choices[0].message.content == "warm-1"
    stats = pool(gw)
    assert stats["warm_hits"] == 1 and stats["cold_starts"] == 0
    # The warm process held no earlier context: one user message went upstream.
    assert len(upstream_turns(fake, "WARM-1")) == 1
    # The second turn goes to the same, still running process: no start, no --resume.
    assert wait_until(lambda: pool(gw)["bound"] == 1)
    second = c.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": say("WARM-2")}],
        extra_body={"conversation_id": first.conversation_id})  # type: ignore[attr-defined]
    assert second.choices[0].message.content == "warm-2"
    assert pool(gw)["bound_hits"] == 1 and pool(gw)["cold_starts"] == 0
    assert [r for r, _ in upstream_turns(fake, "WARM-2")] == ["user", "assistant", "user"]
    assert warm <= clis(gw)  # that process is still the one alive (plus a refilled warm one)


@pytest.mark.reliability
def test_failed_turn_discards_the_process_and_is_not_glued_to_the_next(
        fake: FakeAPI, gw: Gateway) -> None:
    c = client(gw)
    conversation = c.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": say("FAIL-1")}]
    ).conversation_id  # type: ignore[attr-defined]
    assert wait_until(lambda: pool(gw)["bound"] >= 1)
    killed = pool(gw)["killed"]
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(
            model="sonnet", extra_body={"conversation_id": conversation},
            messages=[{"role": "user", "content": say("FAIL-2", error={"status": 500})}])
    assert pool(gw)["killed"] == killed + 1
    third = c.chat.completions.create(
        model="sonnet", extra_body={"conversation_id": conversation},
        messages=[{"role": "user", "content": say("FAIL-3")}])
    assert third.choices[0].message.content == "fail-3"
    turns = upstream_turns(fake, "FAIL-3")
    assert [r for r, _ in turns] == ["user", "assistant", "user"]
    assert "FAIL-2" not in json.dumps(turns)


@pytest.mark.reliability
def test_a_failed_first_turn_on_a_warm_process_leaves_nothing(tmp: Path, gw: Gateway) -> None:
    assert wait_until(lambda: pool(gw)["warm"] == 1, timeout=20)
    warm_dirs = {d.name for d in (tmp / "ws").glob("conv_*")}
    hits = pool(gw)["warm_hits"]
    r = httpx.post(f"{gw.v1}/chat/completions", timeout=60, json={"messages": [
        {"role": "user", "content": say("WARM-FAIL", error={"status": 400})}]})
    assert r.status_code == 400 and pool(gw)["warm_hits"] == hits + 1
    # The turn ran as the warm process's identity; the conversation, its directory and
    # that identity are gone with the failure.
    cid = r.headers["x-conversation-id"]
    assert cid in warm_dirs
    assert httpx.get(f"{gw.v1}/conversations/{cid}", timeout=30).status_code == 404
    assert not (tmp / "ws" / cid).exists()
    assert wait_until(lambda: pool(gw)["warm"] == 1, timeout=20)  # the refill: a new one
    assert cid not in {d.name for d in (tmp / "ws").glob("conv_*")}


@pytest.mark.reliability
def test_disconnect_mid_turn_kills_the_process_and_its_tools(gw: Gateway) -> None:
    c = client(gw)
    conversation = c.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": say("CUT-1")}]
    ).conversation_id  # type: ignore[attr-defined]
    # Text before the tool call: the stream's 200 goes out with it, not after the status
    # hold (server.status_hold_seconds) that a silent tool run would otherwise wait out.
    script = {"steps": [{"text": "Sleeping. ",
                         "tool_use": {"name": "Bash", "input": {"command": "sleep 272.5"}}},
                        {"text": "slept"}]}
    body = {"model": "sonnet", "stream": True, "conversation_id": conversation,
            "messages": [{"role": "user", "content": f"CUT-2 [[fake {json.dumps(script)}]]"}]}

    def sleeping() -> bool:
        return any("sleep 272.5" in cmd for cmd in process_tree(gw.proc.pid).values())

    with httpx.Client(timeout=30) as h, h.stream("POST", f"{gw.v1}/chat/completions",
                                                 json=body) as response:
        assert response.status_code == 200
        assert wait_until(sleeping, timeout=20)
        serving = serving_cli(gw, conversation)
        assert serving is not None
    # The client is gone: the bound process, its Bash tool and the sleep are gone too.
    assert wait_until(lambda: not sleeping(), timeout=15)
    assert wait_until(lambda: serving_cli(gw, conversation) is None, timeout=15)
    assert not any("sleep 272.5" in cmd for cmd in _all_commands())


def serving_cli(gw: Gateway, conversation: str) -> int | None:
    """The CLI working in the conversation's own directory, if one is alive."""
    for pid in clis(gw):
        try:
            if os.readlink(f"/proc/{pid}/cwd").endswith(conversation):
                return pid
        except OSError:
            pass
    return None


def _all_commands() -> list[str]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                out.append(Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                pass
    return [c.replace("\0", " ") for c in out]


@pytest.mark.reliability
def test_response_cache_and_retry_of_a_crashed_start(fake: FakeAPI, tmp: Path) -> None:
    # A CLI that dies without a word on its first start, then works: retried, unseen.
    flag = tmp / "crashed-once"
    wrapper = tmp / "flaky-claude"
    wrapper.write_text(f'#!/bin/sh\nif [ ! -e {flag} ]; then touch {flag}; exit 1; fi\n'
                       f'exec {CLAUDE_BIN} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = env_for(fake, tmp / "cache", pool__size="0", cache__enabled="true",
                  claude__command=str(wrapper), claude__retry_backoff_seconds="0.1")
    with running_gateway(env) as gateway, httpx.Client(timeout=60) as h:
        body = {"model": "sonnet", "messages": [{"role": "user", "content": say("CACHE-1")}]}
        miss = h.post(f"{gateway.v1}/chat/completions", json=body)
        assert miss.status_code == 200 and miss.headers["x-cache"] == "miss"
        assert flag.exists()  # the first start crashed and was retried
        calls = len(fake.messages_requests())
        hit = h.post(f"{gateway.v1}/chat/completions", json=body)
        assert hit.headers["x-cache"] == "hit" and len(fake.messages_requests()) == calls
        assert hit.json()["choices"] == miss.json()["choices"]
        assert hit.json()["id"] != miss.json()["id"]
        assert "conversation_id" not in hit.json()  # a hit is no turn of that conversation
        streamed = h.post(f"{gateway.v1}/chat/completions", json=body | {"stream": True})
        assert "x-cache" not in streamed.headers


def test_concurrent_new_conversations_never_share_a_process(fake: FakeAPI, gw: Gateway) -> None:
    results: dict[int, Any] = {}

    def ask(n: int) -> None:
        results[n] = client(gw).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": say(f"PAR-{n}")}])

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.choices[0].message.content for r in results.values()) == [
        "par-0", "par-1", "par-2"]
    assert len({r.conversation_id for r in results.values()}) == 3
    for n in range(3):
        assert len(upstream_turns(fake, f"PAR-{n}")) == 1


def test_graceful_shutdown_after_a_chat_on_a_kept_alive_connection(
        fake: FakeAPI, tmp: Path) -> None:
    env = env_for(fake, tmp / "shutdown", pool__size="1",
                  server__graceful_timeout_seconds="120")
    with running_gateway(env) as gateway, httpx.Client(timeout=60) as h:
        assert wait_until(lambda: pool(gateway)["warm"] == 1, timeout=20)
        r = h.post(f"{gateway.v1}/chat/completions", json={
            "model": "sonnet", "messages": [{"role": "user", "content": say("BYE")}]})
        assert r.status_code == 200  # the connection stays open (keep-alive)
        gateway.proc.send_signal(signal.SIGTERM)
        # Nothing is in flight: far sooner than the 120 s drain allowance.
        assert gateway.proc.wait(timeout=30) == 0
    workspace = str(tmp / "shutdown" / "ws")
    left = [pid for pid in _pids() if _cwd(pid).startswith(workspace)]
    assert not left, left


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


@pytest.mark.reliability
def test_live_processes_stay_under_the_cap(fake: FakeAPI, tmp: Path) -> None:
    # Each conversation keeps its process and the pool keeps a warm one; with room for
    # two, older ones are retired before a new one starts. Sampled throughout.
    env = env_for(fake, tmp / "cap", pool__size="1", claude__max_concurrent_sessions="2")
    with running_gateway(env) as gateway:
        peak: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(len(clis(gateway)))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            ids = [client(gateway).chat.completions.create(
                model="sonnet", messages=[{"role": "user", "content": say(f"CAP-{n}")}]
            ).conversation_id for n in range(4)]  # type: ignore[attr-defined]
            time.sleep(1)  # room for a refill to (wrongly) overshoot
        finally:
            stop.set()
            sampler.join()
        assert len(set(ids)) == 4
        assert max(peak) <= 2, max(peak)
        assert pool(gateway)["retired"] >= 2
