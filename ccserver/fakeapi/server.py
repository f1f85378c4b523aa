"""The fake Anthropic API's I/O shell: trio sockets + h11, executing `plan.Reply` objects.

Raw h11 instead of an ASGI server because the fake must misbehave on purpose: never send a
response head, stall mid-body, or close the socket in the middle of a chunked body.

Every reply is written while a watcher task reads the socket. EOF (or a reset) from the client
cancels the write, so hangs and long delays end as soon as the CLI gives up and no task outlives
its connection. Bytes the watcher reads early (a keep-alive client's next request) are handed to
h11, which buffers them for the next cycle.
"""

from __future__ import annotations

import json
import time
import uuid
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any

import attrs
import h11
import trio

from .plan import FaultLedger, plan_count_tokens, plan_messages
from .reply import Ending, Reply, error_reply, json_reply
from .reqlog import RequestLog, mask_headers

__all__ = ["FakeAPI", "serve"]

_READ_SIZE = 65536
_DROP_GRACE_S = 0.25
# Statuses the stdlib does not know; the CLI ignores reason phrases, curl users do not.
_REASONS = {529: "Overloaded"}


class _Request:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = target
        self.path = target.partition("?")[0]
        self.headers = headers
        self.body = body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _REASONS.get(status, "")


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


class FakeAPI:
    """Routes requests and serves connections; one instance per listening socket."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.log = RequestLog(log_path)
        self.ledger = FaultLedger()

    def route(self, request: _Request) -> Reply:
        if request.path == "/_fake/requests":
            if request.method == "GET":
                return json_reply(200, self.log.entries())
            if request.method == "DELETE":
                return json_reply(200, {"deleted": self.log.clear()})
        body: Any = None
        bad_json = False
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body, bad_json = request.body.decode("utf-8", "replace"), True
        if not request.path.startswith("/_fake/"):
            self.log.record(
                {
                    "time": time.time(),
                    "method": request.method,
                    "path": request.target,
                    "headers": request.headers,
                    "body": body,
                    "size": len(request.body),  # bytes on the wire, for bench/upstream_bytes
                }
            )
        if request.method == "POST" and request.path in (
            "/v1/messages",
            "/v1/messages/count_tokens",
        ):
            if bad_json or not isinstance(body, dict):
                return error_reply(400, "request body must be a JSON object")
            if request.path == "/v1/messages/count_tokens":
                return plan_count_tokens(body)
            session = request.headers.get("x-claude-code-session-id", "")
            return plan_messages(body, session, self.ledger, _new_id)
        return error_reply(404, f"fake API: no route for {request.method} {request.path}")

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await _read_request(conn, stream)
                if request is None:
                    return
                try:
                    reply = self.route(request)
                except Exception as exc:  # a fake bug must fail one request, not the server
                    reply = error_reply(500, f"fake API crashed: {exc!r}")
                if request.method == "HEAD":
                    # The CLI probes `HEAD /` before its first request; h11 forbids a body here.
                    reply = attrs.evolve(reply, frames=())
                if not await _serve_reply(conn, stream, reply):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        # except*: a peer gone while a reply is written surfaces from `_serve_reply`'s nursery
        # as a group, and must end this connection, not the whole fake.
        except* (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            await stream.aclose()


async def serve(
    host: str,
    port: int,
    *,
    log_path: Path | str | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the fake API on ``host:port`` until cancelled.

    Args:
      port: 0 picks a free port; the one actually bound is passed to ``task_status.started``.
      log_path: also append every request as one JSON line to this file.
    """
    app = FakeAPI(Path(log_path) if log_path is not None else None)
    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            partial(trio.serve_tcp, app.handle, port, host=host)
        )
        task_status.started(listeners[0].socket.getsockname()[1])


async def _read_request(conn: h11.Connection, stream: trio.SocketStream) -> _Request | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(_READ_SIZE))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = mask_headers(head.headers.raw_items())
            return _Request(head.method.decode(), head.target.decode(), headers, bytes(body))
        else:  # ConnectionClosed, or PAUSED after a protocol mix-up: stop serving.
            return None


async def _serve_reply(conn: h11.Connection, stream: trio.SocketStream, reply: Reply) -> bool:
    """Write ``reply``; return False when the connection must not be reused."""
    gone = trio.Event()
    reusable = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_disconnect, conn, stream, nursery.cancel_scope, gone)
        reusable = await _write_reply(conn, stream, reply)
        nursery.cancel_scope.cancel()
    return reusable and not gone.is_set()


async def _watch_disconnect(
    conn: h11.Connection, stream: trio.SocketStream, scope: trio.CancelScope, gone: trio.Event
) -> None:
    try:
        while data := await stream.receive_some(_READ_SIZE):
            conn.receive_data(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    gone.set()
    scope.cancel()


async def _write_reply(conn: h11.Connection, stream: trio.SocketStream, reply: Reply) -> bool:
    await trio.sleep(reply.first_delay)
    if reply.ending is Ending.HANG_BEFORE_HEADERS:
        await trio.sleep_forever()
    response = h11.Response(
        status_code=reply.status, headers=list(reply.headers), reason=_reason(reply.status)
    )
    await stream.send_all(conn.send(response))
    for frame in reply.frames:
        await trio.sleep(frame.delay)
        await stream.send_all(conn.send(h11.Data(data=frame.data)))
    if reply.ending is Ending.DROP:
        # The CLI's fetch errors its body stream on the broken chunked encoding, and erroring a
        # WHATWG ReadableStream discards chunks not yet read: without a pause, deltas sent just
        # before the drop never reach stdout. Give the client time to consume them first.
        await trio.sleep(_DROP_GRACE_S)
        return False
    if reply.ending is Ending.HANG:
        await trio.sleep_forever()
    await stream.send_all(conn.send(h11.EndOfMessage()))
    return True
