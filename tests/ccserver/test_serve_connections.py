"""Connections over real loopback sockets: what a closed, silent or slow client costs the
server.

The server runs in this process, so /proc/self/fd counts both ends: a client's socket is
closed at once by the test, and what stays open past that is the server's. Counts are
asserted with a wide margin and waited for with a bounded poll: they are behaviour (does
the server let go of a closed connection?), never a timing.
"""

from __future__ import annotations

import json
import os
from functools import partial

import h11
import pytest
import trio

from ccserver.app import App
from ccserver.serve import serve
from tests.support.replay import ReplayCLI
from tests.support.settings import SettingsFactory

from .test_serve import GUARD, StubApp, get, settings

pytestmark = [pytest.mark.reliability]

__all__: list[str] = []

CONNECTIONS = 60


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled_fds(limit: int) -> int:
    """The fd count once it is below ``limit``, or after a bounded wait for that."""
    with trio.move_on_after(GUARD / 2):
        while open_fds() >= limit:
            await trio.sleep(0.05)
    return open_fds()


async def test_connections_closed_by_the_client_release_their_fd() -> None:
    # A keep-alive far longer than the test: only the client's close can release the fds.
    app = StubApp()
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, settings(keep_alive_seconds=600.0),
                                               app=app))
            assert await get(port, "/health") == (200, b"hello /health")
            before = open_fds()
            for _ in range(CONNECTIONS):
                # One request per connection, then the client closes it (`get` does).
                assert await get(port, "/health") == (200, b"hello /health")
            # Hypercorn's trio worker kept each one in CLOSE-WAIT for the keep-alive.
            assert await settled_fds(before + 10) < before + 10
            nursery.cancel_scope.cancel()


async def test_a_silent_client_is_dropped_while_others_are_served() -> None:
    app = StubApp()
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, settings(keep_alive_seconds=1.0),
                                               app=app))
            async with await trio.open_tcp_stream("127.0.0.1", port) as silent:
                # Served while the silent one is connected; a busy machine may take a while.
                assert await get(port, "/health") == (200, b"hello /health")
                # The server closes the silent connection: its read sees EOF.
                assert await silent.receive_some() == b""
            assert await get(port, "/health") == (200, b"hello /health")
            nursery.cancel_scope.cancel()


async def test_a_trickled_body_gets_a_408_and_its_connection_closed(
        make_settings: SettingsFactory, replay_cli: ReplayCLI) -> None:
    # The real app: the body's deadline is its own, Hypercorn's idle timer having stopped
    # once the head was in. The client then holds its end open and sends nothing more, so
    # the EOF it reads is the server's doing.
    configured = make_settings(server={"port": 0, "body_timeout_seconds": 0.5,
                                       "keep_alive_seconds": 600.0},
                               claude={"command": replay_cli.command,
                                       "extra_env": replay_cli.env},
                               pool={"size": 0, "idle_seconds": 0})
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, configured, app=App(configured)))
            async with await trio.open_tcp_stream("127.0.0.1", port) as slow:
                await slow.send_all(b"POST /v1/chat/completions HTTP/1.1\r\n"
                                    b"host: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
                                    b"content-length: 1000000\r\n\r\n{\"model\": " % port)
                conn = h11.Connection(h11.CLIENT)
                conn.send(h11.Request(method="POST", target="/", headers=[
                    ("host", "test"), ("content-length", "1000000")]))
                received, body = [], b""
                while (data := await slow.receive_some()) != b"":
                    conn.receive_data(data)
                    while (event := conn.next_event()) is not h11.NEED_DATA:
                        received.append(event)
                        if isinstance(event, h11.Data):
                            body += event.data
                response = next(e for e in received if isinstance(e, h11.Response))
            assert response.status_code == 408
            assert (b"connection", b"close") in list(response.headers)
            assert json.loads(body)["error"]["code"] == "request_timeout"
            nursery.cancel_scope.cancel()
