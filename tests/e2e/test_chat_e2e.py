"""The real gateway, the real CLI and the fake upstream, driven by the official openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.e2e import client, directive, gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, process_tree, processes, running_gateway, wait_until


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("e2e")
    with running_fakeapi(tmp) as fake:
        # No process outlives its turn here, so "no process left" means just that;
        # test_pool_e2e covers the processes kept alive. No keep-alive fires: one that
        # falls due before a cold CLI reports an upstream error would commit the 200.
        env = gateway_env(fake, tmp, claude__first_output_timeout_seconds="4",
                          claude__allowed_tools='["Bash(sleep *)"]',
                          server__sse_keepalive_seconds="600", pool__size="0",
                          pool__idle_seconds="0")
        with running_gateway(env) as gw:
            yield fake, gw


def test_non_streaming(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    raw = client(gw).chat.completions.with_raw_response.create(
        model="sonnet", messages=[{"role": "user", "content": "hi " + directive(text="Hello there, world")}])
    done = raw.parse()
    assert done.choices[0].message.content == "Hello there, world"
    assert done.choices[0].finish_reason == "stop"
    assert done.id.startswith("chatcmpl-") and done.usage is not None and done.usage.completion_tokens > 0
    assert raw.headers["x-request-id"]


def test_streaming_deltas_usage_and_system_prompt(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    stream = client(gw).chat.completions.create(
        model="sonnet", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "SYSTEM-MARKER-77"},
                  {"role": "user", "content": "go " + directive(chunks=["one ", "two ", "three"])}])
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert deltas == ["one ", "two ", "three"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert len({c.id for c in chunks}) == 1
    systems = [json.dumps(r["body"].get("system")) for r in fake.messages_requests()]
    assert any("SYSTEM-MARKER-77" in s for s in systems)


@pytest.mark.parametrize(("status", "exc", "ours"), [
    (401, openai.AuthenticationError, 401), (403, openai.PermissionDeniedError, 403),
    (429, openai.RateLimitError, 429),
    (529, openai.InternalServerError, 503), (500, openai.InternalServerError, 502)])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.reliability
def test_upstream_errors(stack: tuple[FakeAPI, Gateway], status: int, exc: type[Exception],
                         ours: int, stream: bool) -> None:
    _, gw = stack
    with pytest.raises(exc) as info:
        result = client(gw).chat.completions.create(
            model="sonnet", stream=stream,
            messages=[{"role": "user", "content": "x " + directive(error={"status": status})}])
        if stream:
            list(result)  # type: ignore[arg-type]
    assert info.value.status_code == ours  # type: ignore[attr-defined]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.reliability
def test_upstream_429_carries_retry_after(stack: tuple[FakeAPI, Gateway], stream: bool) -> None:
    # This gateway runs the CLI without retries, so the CLI never says what the upstream
    # asked for (errors_map): the client is told the default wait, not nothing.
    _, gw = stack
    with pytest.raises(openai.RateLimitError) as info:
        result = client(gw).chat.completions.create(
            model="sonnet", stream=stream, messages=[{"role": "user", "content": "x " + directive(
                error={"status": 429, "headers": {"retry-after": "3"}})}])
        if stream:
            list(result)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "2"


@pytest.mark.reliability
def test_upstream_retry_after_passes_through_when_the_cli_retries(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("retrying")
    with running_fakeapi(tmp) as fake:
        # One CLI retry: the CLI waits the upstream's retry-after and says so in api_retry.
        env = gateway_env(fake, tmp, claude__max_retries="1", pool__size="0",
                          server__sse_keepalive_seconds="600")
        with running_gateway(env) as gw, pytest.raises(openai.RateLimitError) as info:
            client(gw).chat.completions.create(
                model="sonnet", messages=[{"role": "user", "content": "x " + directive(
                    error={"status": 429, "headers": {"retry-after": "3"}})}])
        assert len(fake.messages_requests()) == 2
    assert info.value.response.headers["retry-after"] == "3"


@pytest.mark.reliability
def test_upstream_hang_is_a_504_and_leaves_no_process(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    with pytest.raises(openai.APIStatusError) as info:
        client(gw).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": directive(hang="before_headers")}])
    assert info.value.status_code == 504
    assert wait_until(lambda: not process_tree(gw.proc.pid), timeout=10), process_tree(gw.proc.pid)


@pytest.mark.reliability
def test_disconnect_mid_tool_leaves_no_process(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    script = directive(steps=[{"text": "Starting now.", "tool_use": {"name": "Bash", "input": {"command": "sleep 271.5"}}},
                              {"text": "done"}])
    stream = client(gw).chat.completions.create(
        model="sonnet", stream=True, messages=[{"role": "user", "content": "run " + script}])
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    assert wait_until(lambda: any("sleep 271.5" in c for c in process_tree(gw.proc.pid).values()), timeout=15)
    stream.close()
    assert wait_until(lambda: not process_tree(gw.proc.pid), timeout=15), process_tree(gw.proc.pid)
    assert not any("sleep 271.5" in cmd for cmd in processes()[1].values())


def test_http_surface(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    with httpx.Client(base_url=gw.base_url, timeout=30) as h:
        assert h.get("/health").json()["cli"]["version"].startswith("2.1.197")
        ids = [m["id"] for m in h.get("/models").json()["data"]]
        assert {"opus", "sonnet", "haiku"} <= set(ids)
        nf = h.get("/v1/nope")
        assert nf.status_code == 404 and nf.json()["error"]["type"] == "invalid_request_error"
        assert h.get("/v1/chat/completions").status_code == 405
        bad = h.post("/v1/chat/completions", content=b"{nope")
        assert bad.status_code == 400 and "JSON" in bad.json()["error"]["message"]
        field = h.post("/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "n": 3})
        assert field.status_code == 400 and field.json()["error"]["param"] == "n"
        big = h.post("/v1/chat/completions", content=b" " * (11 * 1024 * 1024))
        assert big.status_code == 413
