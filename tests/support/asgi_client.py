"""Call a raw ASGI app in-process: one http scope in, status, headers and body out.

No sockets and no lifespan: tests that need gateway state set it by hand. After the body
has been handed over, ``receive`` blocks until the response is complete and then reports
``http.disconnect``, like a client that waits for its answer and then goes away.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, MutableMapping
from typing import Any

import attrs
import trio

from ccserver.edge.asgi import ASGIApp

__all__ = ["Response", "request"]


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
            return {"type": "http.request", "body": body, "more_body": False}
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
