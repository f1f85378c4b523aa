"""Two gateways share one real Redis: any gateway continues any conversation with Claude's
own session, one turn at a time across both, and both ride out Redis going away.

Each gateway has its own CLI config dir (so its own session transcripts) and its own data
dir; they share the workspace path, as gateways deployed from one configuration do. What
the other gateway's CLI sent upstream is read from the fake's request log: the proof that
the session travelled, not the text.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.e2e import WEATHER, client, directive, gateway_env, upstream_turns
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway, wait_until
from tests.support.redis import RedisServer, free_port, running_redis

pytestmark = [pytest.mark.e2e]

#: How long a turn waits for the conversation's running turn: long enough for the turn
#: before to be handed over (its transcript uploaded), far shorter than SLOW_MS.
BUSY_WAIT = "3"
SLOW_MS = 12_000


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def fake(tmp: Path) -> Iterator[FakeAPI]:
    with running_fakeapi(tmp) as api:
        yield api


@pytest.fixture(scope="module")
def redis(tmp: Path) -> Iterator[RedisServer]:
    with running_redis(tmp / "redis") as server:
        yield server


def env_for(fake: FakeAPI, tmp: Path, name: str, redis: RedisServer, **settings: str
            ) -> dict[str, str]:
    env = gateway_env(fake, tmp / name, conversation__store_url=redis.url,
                      conversation__busy_wait_seconds=BUSY_WAIT, **settings)
    return env | {"CLAUDE_CODE__CLAUDE__WORKSPACE": str(tmp / "ws")}


@pytest.fixture(scope="module")
def pair(fake: FakeAPI, tmp: Path, redis: RedisServer) -> Iterator[tuple[Gateway, Gateway]]:
    with running_gateway(env_for(fake, tmp, "a", redis)) as a, \
            running_gateway(env_for(fake, tmp, "b", redis)) as b:
        yield a, b


def say(gw: Gateway, text: str, conversation: str | None = None) -> tuple[str, str]:
    """(conversation id, answer) of one turn on ``gw``."""
    headers = {"x-conversation-id": conversation} if conversation else {}
    done = client(gw).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": text}], extra_headers=headers)
    return done.conversation_id, done.choices[0].message.content or ""  # type: ignore[attr-defined]


def test_a_conversation_goes_on_across_gateways_with_its_own_session(
        pair: tuple[Gateway, Gateway], fake: FakeAPI) -> None:
    a, b = pair
    conv, first = say(a, "one: my name is Zed " + directive(text="Hello Zed."))
    assert first == "Hello Zed."
    _, second = say(b, "two: where am I? " + directive(text="On gateway B."), conv)
    assert second == "On gateway B."
    # B's CLI resumed the session A's CLI wrote: turn one went upstream from B.
    assert upstream_turns(fake, "two: where am I?") == [
        ("user", "one: my name is Zed " + directive(text="Hello Zed.")),
        ("assistant", "Hello Zed."),
        ("user", "two: where am I? " + directive(text="On gateway B.")),
    ]
    # Back on A, whose live CLI still holds only turn one: it must not answer from it.
    _, third = say(a, "three: and now? " + directive(text="Back on A."), conv)
    assert third == "Back on A."
    assert [role for role, _ in upstream_turns(fake, "three: and now?")] == [
        "user", "assistant", "user", "assistant", "user"]
    assert upstream_turns(fake, "three: and now?")[3] == ("assistant", "On gateway B.")


def test_a_stateless_client_is_recognised_on_the_other_gateway(
        pair: tuple[Gateway, Gateway], fake: FakeAPI) -> None:
    a, b = pair
    opening = "stateless: remember 41 " + directive(text="Noted, 41.")
    done = client(a).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": opening}])
    follow = "stateless: what number? " + directive(text="41.")
    again = client(b).chat.completions.create(model="sonnet", messages=[
        {"role": "user", "content": opening},
        {"role": "assistant", "content": "Noted, 41."},
        {"role": "user", "content": follow}])
    assert again.conversation_id == done.conversation_id  # type: ignore[attr-defined]
    assert upstream_turns(fake, "stateless: what number?")[1] == ("assistant", "Noted, 41.")


def test_concurrent_turns_of_one_conversation_on_two_gateways_get_one_409(
        pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    conv, _ = say(a, "busy: start " + directive(text="ok"))
    slow: list[str] = []
    running = threading.Thread(target=lambda: slow.append(say(
        a, "busy: slow " + directive(text="slow done", first_delay_ms=SLOW_MS), conv)[1]))
    running.start()
    try:
        # The slow turn holds the conversation once A's stats show it running.
        assert wait_until(lambda: httpx.get(f"{a.base_url}/stats").json()
                          ["processes"]["live"] >= 1, timeout=30)
        with pytest.raises(openai.ConflictError) as caught:
            say(b, "busy: meanwhile " + directive(text="never"), conv)
        assert caught.value.body["code"] == "conversation_busy"  # type: ignore[index]
    finally:
        running.join(60)
    assert slow == ["slow done"]
    assert say(b, "busy: after " + directive(text="after"), conv)[1] == "after"


def test_redis_lost_gives_503_and_the_gateways_recover_by_themselves(
        pair: tuple[Gateway, Gateway], redis: RedisServer) -> None:
    a, b = pair
    conv, _ = say(a, "outage: before " + directive(text="before"))
    redis.stop()
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            say(b, "outage: during " + directive(text="never"), conv)
        assert caught.value.status_code == 503
        assert caught.value.body["code"] == "store_unavailable"  # type: ignore[index]
        stats = httpx.get(f"{a.base_url}/stats")
        assert stats.status_code == 200  # this gateway's figures need no Redis
        assert "error" in stats.json()["cluster"]
        health = httpx.get(f"{a.base_url}/health", timeout=30)
        assert health.status_code == 503 and health.json()["store"]["ok"] is False
    finally:
        redis.start()
    health = httpx.get(f"{a.base_url}/health", timeout=30)
    assert health.status_code == 200 and health.json()["store"]["ok"] is True
    # The data survived (appendfsync always) and both gateways reconnect by themselves.
    assert say(b, "outage: after " + directive(text="after"), conv)[1] == "after"
    assert say(a, "outage: again " + directive(text="again"), conv)[1] == "again"


def test_a_gateway_without_its_redis_does_not_start(fake: FakeAPI, tmp: Path,
                                                      redis: RedisServer) -> None:
    env = gateway_env(fake, tmp / "c", conversation__store_url=f"redis://:pw@127.0.0.1:{free_port()}/0")
    done = subprocess.run([sys.executable, "-m", "ccserver", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 3
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ccserver: start-up failed:") and "does not answer" in last
    assert "store_url" in last and "pw@" not in done.stderr


def test_a_killed_gateways_lock_expires(fake: FakeAPI, tmp: Path, redis: RedisServer,
                                        pair: tuple[Gateway, Gateway]) -> None:
    _, b = pair
    with running_gateway(env_for(fake, tmp, "d", redis, conversation__lock_seconds="3",
                                 pool__idle_seconds="0")) as d:
        conv, _ = say(d, "crash: start " + directive(text="ok"))
        hung = threading.Thread(target=lambda: _ignore_errors(
            lambda: say(d, "crash: hang " + directive(text="x", hang="after_headers"), conv)))
        hung.start()
        assert wait_until(lambda: httpx.get(f"{d.base_url}/stats").json()
                          ["processes"]["live"] >= 1, timeout=30)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        hung.join(30)
    # B gets the conversation once the dead gateway's lock has expired.
    assert wait_until(lambda: _ok(lambda: say(b, "crash: after " + directive(text="mine"),
                                              conv)), timeout=30, interval=0.5)


def _ok(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except openai.ConflictError:
        return False
    return True


def _ignore_errors(call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except openai.APIError:
        pass


def test_a_gateway_stopped_right_after_a_turn_still_shares_it(
        fake: FakeAPI, tmp: Path, redis: RedisServer, pair: tuple[Gateway, Gateway]) -> None:
    _, b = pair
    with running_gateway(env_for(fake, tmp, "e", redis)) as e:
        conv, _ = say(e, "drain: one " + directive(text="one"))
    # SIGTERM and exit: its last turn's transcript went to Redis on the way out.
    before = httpx.get(f"{b.base_url}/stats").json()["transcripts"]["downloaded"]
    assert say(b, "drain: two " + directive(text="two"), conv)[1] == "two"
    assert httpx.get(f"{b.base_url}/stats").json()["transcripts"]["downloaded"] == before + 1
    assert upstream_turns(fake, "drain: two")[1] == ("assistant", "one")


def test_a_tool_call_made_on_one_gateway_is_answered_on_the_other(
        pair: tuple[Gateway, Gateway], fake: FakeAPI) -> None:
    """A stateless client: the call comes from A, its result goes to B. B has no held
    call, so it resumes the session A shared, with the result written after the call:
    upstream sees Claude's genuine call and the client's result, not quoted text."""
    a, b = pair
    script = directive(steps=[
        {"text": "Let me check.", "tool_use": {"name": "get_weather", "input": {"city": "Oslo"}}},
        {"text": "Oslo is cold."}])
    messages: list[Any] = [{"role": "user", "content": "tools: weather? " + script}]
    first = client(a).chat.completions.create(model="sonnet", messages=messages,
                                              tools=[WEATHER])
    (call,) = first.choices[0].message.tool_calls or []
    messages += [first.choices[0].message,
                 {"role": "tool", "tool_call_id": call.id, "content": "minus 7"}]
    second = client(b).chat.completions.create(model="sonnet", messages=messages,
                                               tools=[WEATHER])
    assert second.choices[0].message.content == "Oslo is cold."
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    *_, assistant, user = fake.messages_requests()[-1]["body"]["messages"]
    assert [blk["id"] for blk in assistant["content"] if blk["type"] == "tool_use"] == [call.id]
    assert user["content"][0]["tool_use_id"] == call.id
    assert "minus 7" in json.dumps(user["content"][0]["content"])


def test_previous_response_id_works_on_the_other_gateway(
        pair: tuple[Gateway, Gateway], fake: FakeAPI) -> None:
    a, b = pair
    first = client(a).responses.create(
        model="sonnet", input="responses: I like tea " + directive(text="Tea, noted."))
    assert client(b).responses.retrieve(first.id).output_text == "Tea, noted."
    second = client(b).responses.create(
        model="sonnet", previous_response_id=first.id,
        input="responses: what do I like? " + directive(text="Tea."))
    assert second.output_text == "Tea."
    assert upstream_turns(fake, "responses: what do I like?")[1] == ("assistant", "Tea, noted.")
