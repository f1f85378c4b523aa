"""Call a raw ASGI app in-process: one http scope in, status, headers and body out.

No sockets. Without `lifespan` nothing is started: tests that need gateway state set it by
hand, or run the app's own start-up and shutdown with `async with lifespan(app):`. After the
body has been handed over, ``receive`` blocks until the response is complete and then reports
``http.disconnect``, like a client that waits for its answer and then goes away. With
``stall=True`` the body is handed over as a first part with more to come, and the rest never
comes: a client that stops sending half-way through its body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ccserver.edge.asgi import ASGIApp

__all__ = ["Response", "lifespan", "request", "sse_events"]


@attrs.frozen
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of response header ``name`` (case-insensitive)."""
        return next((v for k, v in self.headers if k == name.lower()), None)

    def header_names(self) -> set[str]:
        return {k for k, _ in self.headers}

    def json(self) -> Any:
        return json.loads(self.body)


async def request(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    client: tuple[str, int] = ("127.0.0.1", 50000),
    stall: bool = False,
) -> Response:
    """Send one request to ``app`` and collect the whole response."""
    path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": client,
        "server": ("127.0.0.1", 8080),
    }
    done = trio.Event()
    body_sent = False
    status: list[int] = []
    response_headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> MutableMapping[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": stall}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert not status, "response started twice"
            status.append(message["status"])
            response_headers.extend(
                (bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1"))
                for k, v in message.get("headers", ())
            )
        elif message["type"] == "http.response.body":
            assert status, "body before response start"
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    assert status, f"{method} {path}: the app sent no response"
    return Response(status[0], response_headers, b"".join(chunks))


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[list[str]]:
    """The app started (ASGI lifespan start-up) for the block, and shut down after it.

    Yields the lifespan messages the app sent, so far and later. As Hypercorn does, an app
    that returns without ``lifespan.shutdown.complete`` counts as shut down.
    """
    to_app, app_inbox = trio.open_memory_channel[MutableMapping[str, Any]](1)
    app_outbox, from_app = trio.open_memory_channel[MutableMapping[str, Any]](1)
    sent: list[str] = []
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}

    async def serve() -> None:
        async with app_outbox:
            await app(scope, app_inbox.receive, app_outbox.send)

    async def reply() -> str:
        try:
            message = await from_app.receive()
        except trio.EndOfChannel:
            return "returned"
        sent.append(message["type"])
        return str(message["type"])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        await to_app.send({"type": "lifespan.startup"})
        started = await reply()
        assert started == "lifespan.startup.complete", started
        try:
            yield sent
        finally:
            with trio.CancelScope(shield=True):
                await to_app.send({"type": "lifespan.shutdown"})
                stopped = await reply()
            assert stopped in ("lifespan.shutdown.complete", "returned"), stopped


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """A whole SSE body as (event, data) pairs; comment lines (keep-alives) are dropped."""
    events = []
    for block in body.decode().split("\n\n"):
        event, data = "", []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((event, "\n".join(data)))
    return events
