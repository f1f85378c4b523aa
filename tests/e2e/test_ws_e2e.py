"""The WebSocket surfaces through the real gateway, the real CLI and the fake upstream: the
Responses WebSocket mode (with the openai SDK's ``responses.connect()`` and a plain client)
and chat completions at /v1/ws (with the ``websockets`` library)."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.support.e2e import gateway_env, upstream_turns
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, process_tree, running_gateway, wait_until
from tests.support.openai_schema import validate

MAX_FRAME = 262144


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("ws")
    with running_fakeapi(tmp) as fake:
        # No process outlives its turn, so "no process left" means just that.
        env = gateway_env(fake, tmp, pool__size="0", pool__idle_seconds="0",
                          websocket__max_frame_bytes=str(MAX_FRAME),
                          websocket__max_concurrent_per_socket="2",
                          websocket__send_queue="4", websocket__send_timeout_seconds="1")
        with running_gateway(env) as gw:
            yield fake, gw


def ws_url(gw: Gateway, path: str) -> str:
    return gw.base_url.replace("http://", "ws://") + path


def say(prompt: str, **script: object) -> str:
    return f"{prompt} [[fake {json.dumps(script)}]]"


def create(request_id: str, content: str, **extra: Any) -> str:
    return json.dumps({"type": "chat.completions.create", "id": request_id,
                       "request": {"model": "sonnet", **extra,
                                   "messages": [{"role": "user", "content": content}]}})


def frames_until(ws: ClientConnection, done: Any) -> list[dict[str, Any]]:
    """Frames received until one satisfies ``done`` (included)."""
    out = []
    while True:
        frame = json.loads(ws.recv(timeout=30))
        out.append(frame)
        if done(frame):
            return out


def no_cli_left(gw: Gateway) -> bool:
    return wait_until(lambda: not process_tree(gw.proc.pid), timeout=15)


def upstream_roles(fake: FakeAPI, marker: str) -> list[str]:
    return [role for role, _ in upstream_turns(fake, marker)]


# ---- the Responses WebSocket mode ---------------------------------------------------------------


def test_sdk_websocket_mode_and_connection_scoped_continuation(
        stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    with openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0) as client:
        with client.responses.connect() as conn:
            conn.response.create(model="sonnet", store=False,
                                 input=say("WS-ONE", chunks=["Reply ", "one"]))
            events = []
            for event in conn:
                events.append(event)
                if event.type == "response.completed":
                    break
            assert [e.type for e in events][:2] == ["response.created", "response.in_progress"]
            deltas = [e.delta for e in events if e.type == "response.output_text.delta"]  # type: ignore[union-attr]
            assert deltas == ["Reply ", "one"]
            first = events[-1].response  # type: ignore[union-attr]
            assert first.output_text == "Reply one" and first.store is False
            # store=false: continued on this connection, from memory.
            conn.response.create(model="sonnet", previous_response_id=first.id,
                                 input=say("WS-TWO", text="Reply two"))
            for event in conn:
                if event.type == "response.completed":
                    assert event.response.output_text == "Reply two"
                    break
            assert upstream_roles(fake, "WS-TWO") == ["user", "assistant", "user"]
        with client.responses.connect() as other:
            # Another connection does not know an unstored response.
            other.response.create(model="sonnet", previous_response_id=first.id, input="x")
            error = next(iter(other))
            assert error.type == "error" and error.status == 404  # type: ignore[union-attr]
            assert error.error.code == "previous_response_not_found"  # type: ignore[union-attr]


def test_responses_ws_cancel_busy_and_close(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    hang = {"type": "response.create", "model": "sonnet", "stream_id": "lane-1",
            "input": say("hang", chunks=["partial"], hang="after_chunks")}
    with connect(ws_url(gw, "/v1/responses")) as ws:
        ws.send(json.dumps(hang))
        frames_until(ws, lambda f: f["type"] == "response.output_text.delta")
        assert process_tree(gw.proc.pid)
        ws.send(json.dumps(hang))  # one response at a time per connection
        (busy,) = frames_until(ws, lambda f: f["type"] == "error")
        assert busy["status"] == 409 and busy["error"]["code"] == "response_in_progress"
        validate(busy, "ResponseWsError")
        ws.send(json.dumps({"type": "response.cancel"}))
        (end,) = frames_until(ws, lambda f: f["type"] == "response.failed")
        assert end["response"]["status"] == "cancelled" and end["stream_id"] == "lane-1"
        assert end["response"]["output"][0]["content"][0]["text"] == "partial"
        assert no_cli_left(gw), process_tree(gw.proc.pid)
        # The socket goes on: bad frames get errors, a new response runs.
        ws.send(b"\x00binary")
        ws.send(json.dumps({"type": "response.steer"}))
        errors = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
        assert [e["error"]["code"] for e in errors] == ["invalid_frame", "unsupported_message_type"]
        for error in errors:
            validate(error, "ResponseWsError")
        ws.send(json.dumps({"type": "response.create", "input": say("again", text="fine")}))
        events = frames_until(ws, lambda f: f["type"] == "response.completed")
        for event in events:
            validate(event, "ResponseStreamEvent")
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        ws.send(json.dumps(hang))
        frames_until(ws, lambda f: f["type"] == "response.output_text.delta")
    # Closing the socket mid-stream stops the CLI.
    assert no_cli_left(gw), process_tree(gw.proc.pid)


# ---- chat completions at /v1/ws -------------------------------------------------------------------


def test_two_interleaved_chat_streams(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    a = [f"a{i} " for i in range(6)]
    b = [f"b{i} " for i in range(6)]
    with connect(ws_url(gw, "/v1/ws")) as ws:
        ws.send(create("A", say("first", chunks=a, delay_ms=150)))
        ws.send(create("B", say("second", chunks=b, delay_ms=150),
                       stream_options={"include_usage": True}))
        finished: set[str] = set()
        frames = frames_until(ws, lambda f: f["type"] == "done" and
                              (finished.add(f["id"]) or finished == {"A", "B"}))
    chunks = [f for f in frames if f["type"] == "chunk"]
    for request_id, expected in (("A", a), ("B", b)):
        mine = [f["chunk"] for f in chunks if f["id"] == request_id]
        assert mine[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        text = [c["choices"][0]["delta"].get("content") for c in mine if c["choices"]]
        assert [t for t in text if t] == expected
        assert len({c["id"] for c in mine}) == 1
        done = next(f for f in frames if f["type"] == "done" and f["id"] == request_id)
        assert done["usage"]["completion_tokens"] > 0
        assert done["conversation_id"].startswith("conv_")
    # include_usage is honoured per request.
    assert [c["chunk"]["choices"] for c in chunks if c["id"] == "B"][-1] == []
    order = [f["id"] for f in chunks]
    switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert switches >= 2, order  # the streams really ran side by side


def test_chat_cancel_and_close_mid_stream(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    hang = say("hang", chunks=["partial"], hang="after_chunks")
    with connect(ws_url(gw, "/v1/ws")) as ws:
        ws.send(create("h", hang))
        frames_until(ws, lambda f: f["type"] == "chunk" and f["chunk"]["choices"][0]["delta"].get("content"))
        assert process_tree(gw.proc.pid)
        ws.send(json.dumps({"type": "cancel", "id": "h"}))
        (cancelled,) = frames_until(ws, lambda f: f["type"] == "error")
        assert cancelled["id"] == "h" and cancelled["error"]["code"] == "request_cancelled"
        assert no_cli_left(gw), process_tree(gw.proc.pid)
        ws.send(create("h", say("reuse", text="ok")))  # the id is free again
        assert frames_until(ws, lambda f: f["type"] in ("done", "error"))[-1]["type"] == "done"
        ws.send(create("x", hang))
        ws.send(create("y", hang))
        started: set[str] = set()
        frames_until(ws, lambda f: f["type"] == "chunk" and (started.add(f["id"]) or len(started) == 2))
        assert len(process_tree(gw.proc.pid)) >= 2
    assert no_cli_left(gw), process_tree(gw.proc.pid)


@pytest.mark.reliability
def test_bad_frames_get_errors_and_the_socket_stays_open(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    hang = say("hang", chunks=["x"], hang="after_chunks")
    with connect(ws_url(gw, "/ws"), max_size=None) as ws:
        cases: list[tuple[str | bytes, Any, str]] = [
            (b"\x01\x02", None, "invalid_frame"),
            ("not json", None, "invalid_frame"),
            ("[1, 2]", None, "invalid_frame"),
            (json.dumps({"type": "bogus", "id": "q"}), "q", "unsupported_message_type"),
            (json.dumps({"type": "cancel", "id": "nobody"}), "nobody", "unknown_id"),
            (json.dumps({"type": "chat.completions.create", "request": {}}), None, None),
            (json.dumps({"type": "chat.completions.create", "id": "r", "request": []}), "r", None),
            (create("n", "x", n=3), "n", None),
            (create("big", "y" * (MAX_FRAME + 10)), None, "frame_too_large"),
        ]
        for frame, request_id, code in cases:
            ws.send(frame)
            error = json.loads(ws.recv(timeout=30))
            assert error["type"] == "error" and error["id"] == request_id, error
            assert code is None or error["error"]["code"] == code, error
            assert error["status"] in (400, 404) and error["error"]["message"]
        assert error["error"]["message"].startswith("Frame of")
        # The per-socket limit (2 here) and duplicate ids.
        ws.send(create("p1", hang))
        ws.send(create("p2", hang))
        ws.send(create("p1", hang))
        ws.send(create("p3", hang))
        errors = frames_until(ws, lambda f: f["type"] == "error" and f["id"] == "p3")
        codes = {f["id"]: (f["status"], f["error"]["code"]) for f in errors if f["type"] == "error"}
        assert codes == {"p1": (409, "duplicate_id"), "p3": (429, "too_many_requests")}
        for request_id in ("p1", "p2"):
            ws.send(json.dumps({"type": "cancel", "id": request_id}))
        ws.send(create("ok", say("fine", text="still here")))
        frames = frames_until(ws, lambda f: f["type"] == "done")
        texts = [f["chunk"]["choices"][0]["delta"].get("content") for f in frames
                 if f["type"] == "chunk" and f["id"] == "ok" and f["chunk"]["choices"]]
        assert "".join(t for t in texts if t) == "still here"
    assert no_cli_left(gw), process_tree(gw.proc.pid)


@pytest.mark.reliability
def test_a_client_that_stops_reading_is_closed(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    port = int(gw.base_url.rsplit(":", 1)[1])
    # A tiny receive window and a one-frame queue: this client soon stops taking data. Two
    # words per upstream delta make the reply many small frames (~7 MB) from a small prompt.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    with connect(ws_url(gw, "/v1/ws"), sock=sock, max_queue=1, max_size=None) as ws:
        ws.send(create("flood", say("flood", text="a " * 60000, hang="after_chunks")))
        assert wait_until(lambda: process_tree(gw.proc.pid), timeout=15)
        # The CLI would hang after its text: only the server can have stopped it.
        assert no_cli_left(gw), process_tree(gw.proc.pid)
        received = 0
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=30)
                received += 1
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert "not reading" in info.value.rcvd.reason
    assert received < 30000  # far from all of it was buffered for this client


def test_handshakes_refused(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(gw, "/v1/nope"))
    assert info.value.response.status_code == 404
    assert json.loads(info.value.response.body or b"{}")["error"]["code"] == "unknown_url"
    # A page in a browser may not drive the gateway unless CORS allows its origin.
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(gw, "/v1/ws"), origin="https://evil.example")  # type: ignore[arg-type]
    assert info.value.response.status_code == 403


def test_chat_tool_loop_over_the_socket(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    tool = {"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object",
                                              "properties": {"city": {"type": "string"}}}}}
    script = {"steps": [{"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
                        {"text": "Sunny."}]}
    with connect(ws_url(gw, "/v1/ws")) as ws:
        ws.send(create("T1", say("weather?", **script), tools=[tool]))
        frames = frames_until(ws, lambda f: f["type"] in ("done", "error"))
        assert frames[-1]["type"] == "done", frames[-1]
        chunks = [f["chunk"] for f in frames if f["type"] == "chunk"]
        pieces = [tc for c in chunks if c["choices"]
                  for tc in c["choices"][0]["delta"].get("tool_calls", ())]
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
        call_id = pieces[0]["id"]
        arguments = "".join(p["function"].get("arguments", "") for p in pieces)
        ws.send(json.dumps({"type": "chat.completions.create", "id": "T2", "request": {
            "model": "sonnet", "tools": [tool],
            "conversation_id": frames[-1]["conversation_id"], "messages": [
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": call_id, "type": "function",
                     "function": {"name": "get_weather", "arguments": arguments}}]},
                {"role": "tool", "tool_call_id": call_id, "content": "sunny"}]}}))
        frames = frames_until(ws, lambda f: f["type"] in ("done", "error"))
    text = "".join(f["chunk"]["choices"][0]["delta"].get("content") or ""
                   for f in frames if f["type"] == "chunk" and f["chunk"]["choices"])
    assert frames[-1]["type"] == "done" and text == "Sunny."
