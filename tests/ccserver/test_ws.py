"""The WebSocket plumbing over raw ASGI, without sockets or a CLI: the bounded send queue and
the close of a client that stops reading, frame checks, the handshake, dispatch errors."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import attrs
import pytest
import trio

from ccserver.app import App
from ccserver.settings import Settings
from ccserver.settings.sections import AuthSettings, WebSocketSettings
from ccserver.ws.socket import Socket

Message = MutableMapping[str, Any]


@attrs.define
class Peer:
    """The client side of one ASGI websocket: what it sends in, what the app sent out."""

    inbox: trio.MemorySendChannel[Message]
    outbox: trio.MemoryReceiveChannel[Message]
    sent: list[Message] = attrs.field(factory=list)
    #: While unset, the app's frames block, as Hypercorn's sends do for a client not reading.
    reading: trio.Event = attrs.field(factory=trio.Event)

    async def send_text(self, text: str) -> None:
        await self.inbox.send({"type": "websocket.receive", "text": text})

    def frames(self) -> list[Any]:
        return [json.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]


def peer(*, reading: bool = True) -> tuple[Peer, Any, Any]:
    inbox, receive_channel = trio.open_memory_channel[Message](100)
    p = Peer(inbox=inbox, outbox=receive_channel)
    if reading:
        p.reading.set()

    async def receive() -> Message:
        return await receive_channel.receive()

    async def send(message: Message) -> None:
        if message["type"] == "websocket.send":
            await p.reading.wait()
        p.sent.append(message)

    return p, receive, send


async def test_a_client_that_stops_reading_is_closed_and_its_work_cancelled(
        autojump_clock: trio.abc.Clock) -> None:
    p, receive, send = peer(reading=False)
    socket = Socket(receive, send, WebSocketSettings(send_queue=3, send_timeout_seconds=2))
    cancelled = trio.Event()

    async def surface(s: Socket) -> None:
        try:
            for n in range(10_000):
                await s.send({"n": n})
        finally:
            cancelled.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(socket.serve, surface)
        await cancelled.wait()
        assert socket.closing is not None and socket.closing[0] == 1008
        assert "not reading" in socket.closing[1]
        p.reading.set()  # the client reads again: it gets what was in flight, then the close
    assert p.sent[0] == {"type": "websocket.accept"}
    assert p.sent[-1] == {"type": "websocket.close", "code": 1008, "reason": socket.closing[1]}
    assert len(p.frames()) <= 1  # nothing queued was sent after the decision to close


async def test_a_normal_end_flushes_the_queue_then_closes() -> None:
    p, receive, send = peer()
    socket = Socket(receive, send, WebSocketSettings(send_queue=2))

    async def surface(s: Socket) -> None:
        for n in range(5):
            await s.send({"n": n})

    await socket.serve(surface)
    assert p.frames() == [{"n": n} for n in range(5)]
    assert p.sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}


@pytest.mark.parametrize(("message", "fragment"), [
    ({"type": "websocket.receive", "bytes": b"\x00"}, "Binary"),
    ({"type": "websocket.receive", "text": "nope"}, "not valid JSON"),
    ({"type": "websocket.receive", "text": "[]"}, "must be a JSON object"),
    ({"type": "websocket.receive", "text": '{"type": "x", "s": "\\ud800"}'}, "lone surrogate"),
    ({"type": "websocket.receive", "text": '{"type": 1}'}, 'string "type"'),
    ({"type": "websocket.receive", "text": json.dumps({"type": "x", "pad": "é" * 40})}, "larger"),
])
async def test_bad_frames(message: Message, fragment: str) -> None:
    p, receive, send = peer()
    socket = Socket(receive, send, WebSocketSettings(max_frame_bytes=64))
    await p.inbox.send(message)
    with pytest.raises(Exception, match=fragment) as info:
        await socket.receive()
    assert getattr(info.value, "status_hint", None) == 400
    await p.inbox.send({"type": "websocket.receive", "text": '{"type": "ok"}'})
    assert await socket.receive() == {"type": "ok"}
    await p.inbox.send({"type": "websocket.disconnect", "code": 1000})
    assert await socket.receive() is None


async def _handshake(app: App, path: str, headers: list[tuple[bytes, bytes]],
                     extensions: dict[str, Any]) -> list[Message]:
    p, receive, send = peer()
    await p.inbox.send({"type": "websocket.connect"})
    scope = {"type": "websocket", "path": path, "headers": headers, "extensions": extensions}
    with trio.fail_after(5):
        await app(scope, receive, send)
    return p.sent


async def test_handshake_needs_the_api_key() -> None:
    app = App(Settings(auth=AuthSettings(api_keys=("sk-good",))))
    ext = {"websocket.http.response": {}}
    start, body = await _handshake(app, "/v1/ws", [], ext)
    assert start["type"] == "websocket.http.response.start" and start["status"] == 401
    assert json.loads(body["body"])["error"]["code"] == "invalid_api_key"
    # Without the HTTP-response extension the handshake is simply refused.
    (close,) = await _handshake(app, "/v1/responses", [], {})
    assert close["type"] == "websocket.close"
    unknown = await _handshake(app, "/v1/elsewhere", [(b"authorization", b"Bearer sk-good")], ext)
    assert unknown[0]["status"] == 404


async def test_chat_socket_errors_without_a_cli() -> None:
    # No CLI was found (the gateway never started): a request gets its 503 as an error frame.
    app = App(Settings())
    p, receive, send = peer()
    await p.inbox.send({"type": "websocket.connect"})
    for frame in [{"type": "chat.completions.create", "id": "a",
                   "request": {"messages": [{"role": "user", "content": "hi"}]}},
                  {"type": "chat.completions.create", "id": "", "request": {}},
                  {"type": "cancel", "id": "zzz"}]:
        await p.inbox.send({"type": "websocket.receive", "text": json.dumps(frame)})
    scope = {"type": "websocket", "path": "/ws", "headers": [], "extensions": {}}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, scope, receive, send)
        with trio.fail_after(5):
            while len(p.frames()) < 3:
                await trio.sleep(0.01)
        await p.inbox.send({"type": "websocket.disconnect", "code": 1000})
    errors = {f["id"]: f for f in p.frames()}
    assert {k: f["status"] for k, f in errors.items()} == {"a": 503, "zzz": 404, None: 400}
    assert errors["a"]["error"]["code"] == "cli_unavailable"
    assert errors[None]["error"]["param"] == "id"
