"""Conversations through the real gateway and CLI: resume by id, by history, seeded history,
404/409, the CRUD endpoints, and a server killed with SIGKILL that continues afterwards."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.e2e import client, gateway_env, upstream_turns
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway, wait_until


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conv")


@pytest.fixture(scope="module")
def fake(tmp: Path) -> Iterator[FakeAPI]:
    with running_fakeapi(tmp) as api:
        yield api


@pytest.fixture(scope="module")
def gw(fake: FakeAPI, tmp: Path) -> Iterator[Gateway]:
    with running_gateway(gateway_env(fake, tmp, conversation__busy_wait_seconds="2")) as gateway:
        yield gateway


def say(text: str, reply: str, **script: object) -> str:
    return f"{text} [[fake {json.dumps({'text': reply, **script})}]]"


def test_continue_by_id_resumes_the_cli_session(fake: FakeAPI, gw: Gateway) -> None:
    c = client(gw)
    first = c.chat.completions.with_raw_response.create(
        model="sonnet", messages=[{"role": "user", "content": say("ID-ONE", "Reply one")}])
    done = first.parse()
    conversation = first.headers["x-conversation-id"]
    assert conversation.startswith("conv_") and done.conversation_id == conversation  # type: ignore[attr-defined]
    second = c.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": say("ID-TWO", "Reply two")}],
        extra_body={"conversation_id": conversation})
    assert second.choices[0].message.content == "Reply two"
    turns = upstream_turns(fake, "ID-TWO")
    assert [r for r, _ in turns] == ["user", "assistant", "user"]
    assert "ID-ONE" in turns[0][1] and turns[1][1] == "Reply one"
    # The header works as well as the body field, and streams carry the id.
    stream = c.chat.completions.create(
        model="sonnet", stream=True, messages=[{"role": "user", "content": say("ID-3", "Three")}],
        extra_headers={"x-conversation-id": conversation})
    chunks = list(stream)
    assert chunks[0].conversation_id == conversation  # type: ignore[attr-defined]
    assert chunks[-1].conversation_id == conversation  # type: ignore[attr-defined]
    assert [r for r, _ in upstream_turns(fake, "ID-3")] == ["user", "assistant"] * 2 + ["user"]


def test_stateless_client_resending_history_continues_the_same_session(
        fake: FakeAPI, gw: Gateway) -> None:
    c = client(gw)
    history: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": say("FP-ONE", "Answer one")}]
    first = c.chat.completions.create(model="sonnet", messages=history)  # type: ignore[arg-type]
    history += [{"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": say("FP-TWO", "Answer two")}]
    second = c.chat.completions.create(model="sonnet", messages=history)  # type: ignore[arg-type]
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    turns = upstream_turns(fake, "FP-TWO")
    assert [r for r, _ in turns] == ["user", "assistant", "user"]
    assert turns[1][1] == "Answer one"
    # The FP-TWO text was sent once, as the new turn: no history quoted inline.
    assert "conversation_history" not in turns[2][1]
    # A different edit of the history is a new conversation.
    history[2] = {"role": "assistant", "content": "something else"}
    third = c.chat.completions.create(model="sonnet", messages=history)  # type: ignore[arg-type]
    assert third.conversation_id != first.conversation_id  # type: ignore[attr-defined]


def test_unknown_history_is_seeded_as_real_turns(fake: FakeAPI, gw: Gateway) -> None:
    messages = [
        {"role": "user", "content": "My name is Bob."},
        {"role": "assistant", "content": "Nice to meet you, Bob."},
        {"role": "user", "content": "I live in Paris."},
        {"role": "assistant", "content": "Paris is lovely."},
        {"role": "user", "content": say("SEED-Q What is my name?", "Bob from Paris")},
    ]
    done = client(gw).chat.completions.create(model="sonnet", messages=messages)  # type: ignore[arg-type]
    assert done.choices[0].message.content == "Bob from Paris"
    turns = upstream_turns(fake, "SEED-Q")
    assert [r for r, _ in turns] == ["user", "assistant", "user", "assistant", "user"]
    assert [t for _, t in turns[1:4]] == ["Nice to meet you, Bob.", "I live in Paris.",
                                          "Paris is lovely."]
    assert "My name is Bob." in turns[0][1]
    stored = httpx.get(f"{gw.v1}/conversations/{done.conversation_id}").json()  # type: ignore[attr-defined]
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 3


def test_unknown_id_is_404_before_any_cli_runs(fake: FakeAPI, gw: Gateway) -> None:
    before = len(fake.messages_requests())
    with pytest.raises(openai.NotFoundError) as info:
        client(gw).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "hi"}],
            extra_body={"conversation_id": "conv_doesnotexist"})
    assert info.value.code == "conversation_not_found"
    assert len(fake.messages_requests()) == before


@pytest.mark.reliability
def test_second_request_on_a_busy_conversation_gets_409(fake: FakeAPI, gw: Gateway) -> None:
    c = client(gw)
    conversation = c.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": say("BUSY-0", "ok")}]
    ).conversation_id  # type: ignore[attr-defined]
    results: list[str] = []

    def slow() -> None:
        done = c.chat.completions.create(
            model="sonnet", extra_body={"conversation_id": conversation},
            messages=[{"role": "user", "content": say("BUSY-1", "slow", first_delay_ms=6000)}])
        results.append(done.choices[0].message.content or "")

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        # Once the upstream has the slow turn, its CLI holds the conversation.
        assert wait_until(lambda: any("BUSY-1" in json.dumps(r["body"]["messages"][-1])
                                      for r in fake.messages_requests()), timeout=20)
        r = httpx.post(f"{gw.v1}/chat/completions", timeout=30, json={
            "conversation_id": conversation,
            "messages": [{"role": "user", "content": say("BUSY-2", "fast")}]})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conversation_busy"
        assert r.headers["retry-after"] == "1"
    finally:
        thread.join()
    assert results == ["slow"]


def test_conversation_endpoints(tmp: Path, gw: Gateway) -> None:
    with httpx.Client(base_url=gw.v1, timeout=60) as h:
        made = h.post("/conversations", json={"model": "haiku", "system_prompt": "SYS-CRUD",
                                              "metadata": {"team": "a"}}).json()
        assert made["object"] == "conversation" and made["metadata"] == {"team": "a"}
        turn = h.post("/chat/completions", json={
            "conversation_id": made["id"],
            "messages": [{"role": "user", "content": say("CRUD-1", "crud reply")}]}).json()
        assert turn["model"] == "haiku" and turn["conversation_id"] == made["id"]
        got = h.get(f"/conversations/{made['id']}").json()
        assert got["turns"] == 1 and got["messages"][1] == {
            "role": "assistant", "content": "crud reply", "created_at": got["messages"][1]["created_at"]}
        first = h.get("/conversations", params={"limit": 1}).json()
        assert first["data"][0]["id"] == made["id"] and first["has_more"] is True
        rest = h.get("/conversations", params={"limit": 100, "after": made["id"]}).json()
        assert made["id"] not in [c["id"] for c in rest["data"]] and rest["data"]
        assert h.get("/conversations", params={"limit": 0}).status_code == 400
        assert h.post("/conversations", json={"metadata": {"k": 1}}).status_code == 400
        def transcripts() -> list[Path]:
            return list((tmp / "cfg" / "projects").glob(f"*{made['id'][5:]}*/*.jsonl"))

        # The CLI writes its transcript shortly after the result; it stays alive meanwhile.
        assert wait_until(lambda: len(transcripts()) == 1)
        transcript = transcripts()[0]
        assert h.delete(f"/conversations/{made['id']}").json()["deleted"] is True
        assert not transcript.exists() and not (tmp / "ws" / made["id"]).exists()
        assert h.get(f"/conversations/{made['id']}").status_code == 404
        assert h.delete(f"/conversations/{made['id']}").status_code == 404


@pytest.mark.reliability
def test_sigkilled_server_continues_the_conversation_after_restart(
        fake: FakeAPI, tmp: Path) -> None:
    env = gateway_env(fake, tmp / "restart")
    with running_gateway(env) as first:
        conversation = client(first).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": say("KILL-1", "before")}]
        ).conversation_id  # type: ignore[attr-defined]
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    with running_gateway(env) as second:
        done = client(second).chat.completions.create(
            model="sonnet", extra_body={"conversation_id": conversation},
            messages=[{"role": "user", "content": say("KILL-2", "after")}])
    assert done.choices[0].message.content == "after"
    turns = upstream_turns(fake, "KILL-2")
    assert [r for r, _ in turns] == ["user", "assistant", "user"] and turns[1][1] == "before"


@pytest.mark.reliability
def test_refused_and_failed_first_turns_leave_no_conversation(tmp_path: Path) -> None:
    # Own gateway: one turn at a time and one waiting, so the rest are refused with 429.
    with running_fakeapi(tmp_path) as fake, running_gateway(gateway_env(
            fake, tmp_path, claude__max_concurrent_sessions="1",
            claude__max_queued_requests="1", pool__size="0")) as gw:
        statuses: list[int] = []

        def post(content: str) -> None:
            r = httpx.post(f"{gw.v1}/chat/completions", timeout=60,
                           json={"messages": [{"role": "user", "content": content}]})
            statuses.append(r.status_code)

        # A holds the slot until its upstream answers 400 (a failed first turn; 400 is
        # not retried); B waits in the queue, then fails the same way.
        running = threading.Thread(target=post, args=['HOLD [[fake {"error": {"status": 400}, '
                                                      '"first_delay_ms": 8000}]]'])
        running.start()
        assert wait_until(lambda: any("HOLD" in json.dumps(r["body"]["messages"])
                                      for r in fake.messages_requests()), timeout=30)
        queued = threading.Thread(target=post, args=['WAIT [[fake {"error": {"status": 400}}]]'])
        queued.start()
        try:
            assert wait_until(lambda: httpx.get(f"{gw.base_url}/health").json()
                              ["queued_requests"] == 1, timeout=30)
            for _ in range(3):
                r = httpx.post(f"{gw.v1}/chat/completions", timeout=60,
                               json={"messages": [{"role": "user", "content": "refused"}]})
                assert r.status_code == 429 and r.headers["retry-after"], r.text
        finally:
            running.join()
            queued.join()
        assert statuses == [400, 400]
        left = httpx.get(f"{gw.v1}/conversations", timeout=30).json()["data"]
        assert left == []
        assert not list((tmp_path / "ws").glob("conv_*"))
