"""Operations end to end: API keys, CORS, /stats, /metrics and the access log on the real server.

The real gateway runs the real CLI against the fake upstream; the client is the openai SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.e2e import gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway, wait_until

pytestmark = [pytest.mark.e2e]

KEY = "sk-gw-e2e-5f0c2a9d"
ORIGIN = "http://localhost:3000"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("e2e-auth")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, claude__first_output_timeout_seconds="10",
                          auth__api_keys=KEY, cors__allowed_origins=ORIGIN)
        with running_gateway(env) as gw:
            yield fake, gw


def client(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0, timeout=60)


def directive(**script: object) -> str:
    return f"[[fake {json.dumps(script)}]]"


def test_sdk_without_the_right_key_gets_authentication_error(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    before = len(fake.messages_requests())
    with pytest.raises(openai.AuthenticationError) as info:
        client(gw, "sk-wrong").chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(gw, "sk-wrong").models.list()
    assert len(fake.messages_requests()) == before  # no CLI ran for a refused request
    with httpx.Client(base_url=gw.base_url, timeout=30) as h:
        assert h.get("/v1/models").status_code == 401
        assert h.get("/health").status_code == 200  # probes need no key
        assert h.get("/v1/models", headers={"x-api-key": KEY}).status_code == 200


def test_sdk_with_the_key_works(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    raw = client(gw, KEY).chat.completions.with_raw_response.create(
        model="sonnet", messages=[{"role": "user", "content": "hi " + directive(text="Keyed hello")}])
    done = raw.parse()
    assert done.choices[0].message.content == "Keyed hello"
    request_id = raw.headers["x-request-id"]
    # One structured line for the request, with what the handler published; never the key.
    assert wait_until(lambda: any(f"request_id={request_id} " in line for line in gw.log))
    line = next(line for line in gw.log if f"request_id={request_id} " in line)
    assert "path=/v1/chat/completions status=200 duration_ms=" in line
    assert "model=sonnet" in line and "completion_tokens=" in line
    assert not any(KEY in line for line in gw.log)


def test_stats_and_metrics_count_the_traffic(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    stream = client(gw, KEY).chat.completions.create(
        model="sonnet", stream=True, messages=[{"role": "user", "content": directive(chunks=["a", "b"])}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "ab"
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=gw.base_url, timeout=30, headers=headers) as h:
        stats = h.get("/stats").json()
        assert stats["requests"]["by_endpoint"]["POST /chat/completions"]["200"] >= 1
        assert stats["tokens"]["completion"] > 0 and stats["tokens"]["prompt"] > 0
        assert stats["latency_seconds"]["p50"] > 0
        assert stats["processes"] == {"live": 0, "queued": 0}
        assert stats["uptime_seconds"] > 0
        metrics = h.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert 'ccserver_requests_total{endpoint="/chat/completions",method="POST",status="200"}' in metrics.text
        doc = h.get("/openapi.json").json()
        assert "/v1/chat/completions" in doc["paths"] and "bearer" in doc["components"]["securitySchemes"]


def test_browser_preflight_and_cors_headers(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    with httpx.Client(base_url=gw.base_url, timeout=30) as h:
        pre = h.options("/v1/chat/completions", headers={
            "origin": ORIGIN, "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type"})
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in pre.headers["access-control-allow-headers"]
        other = h.options("/v1/chat/completions", headers={
            "origin": "https://evil.example", "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        refused = h.get("/v1/models", headers={"origin": ORIGIN})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN
