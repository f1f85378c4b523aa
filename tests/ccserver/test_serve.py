"""ccserver.serve over real loopback sockets with a stub ASGI app, and `python -m ccserver`.

The signal tests send SIGTERM/SIGINT to this very process: safe only because serve() has its
signal receiver open from before it reports ready until after it returns.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import h11
import pytest
import trio

from ccserver.serve import FINAL_FRAMES_SECONDS, hypercorn_config, serve
from ccserver.settings import ServerSettings, Settings

GUARD = 15.0  # seconds; every test must finish well within it
REPO = Path(__file__).resolve().parents[2]


class StubApp:
    """A raw ASGI app: answers at once, or on /slow after a moment, or never on /hang."""

    def __init__(self) -> None:
        self.in_flight = trio.Event()
        self.cancelled = False
        self.lifespan: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                done = "lifespan.startup.complete"
                if message["type"] == "lifespan.shutdown":
                    done = "lifespan.shutdown.complete"
                await send({"type": done})
                if message["type"] == "lifespan.shutdown":
                    return
        path = scope["path"]
        if path in ("/slow", "/hang"):
            self.in_flight.set()
            try:
                await trio.sleep(0.5 if path == "/slow" else float("inf"))
            except trio.Cancelled:
                self.cancelled = True
                raise
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello " + path.encode()})


async def get(port: int, target: str = "/") -> tuple[int, bytes]:
    """One GET over a fresh connection with h11; status 0 if the server closed on us."""
    conn = h11.Connection(h11.CLIENT)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        request = h11.Request(method="GET", target=target, headers=[("Host", "test")])
        await stream.send_all(conn.send(request) + (conn.send(h11.EndOfMessage()) or b""))
        status, body = 0, b""
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return 0, body
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some())
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status, body


def settings(**server: Any) -> Settings:
    return Settings(server=ServerSettings(port=0, **server))


async def test_serves_on_a_free_port_until_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccserver.serve")
    app = StubApp()
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, settings(), app=app))
            assert port > 0
            assert await get(port, "/v1/models") == (200, b"hello /v1/models")
            assert await get(port) == (200, b"hello /")
            nursery.cancel_scope.cancel()
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)
    assert f"ccserver listening on http://127.0.0.1:{port}" in caplog.text
    assert app.lifespan[:1] == ["lifespan.startup"]


async def test_shutdown_trigger_stops_gracefully() -> None:
    app, stop = StubApp(), trio.Event()
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            start = partial(serve, settings(), app=app, shutdown_trigger=stop.wait)
            port = await nursery.start(start)
            assert (await get(port))[0] == 200
            stop.set()
        # serve returned by itself, after the app's lifespan shutdown ran.
    assert app.lifespan == ["lifespan.startup", "lifespan.shutdown"]


async def test_sigterm_lets_in_flight_requests_finish() -> None:
    app = StubApp()
    results: list[tuple[int, bytes]] = []

    async def client(port: int) -> None:
        results.append(await get(port, "/slow"))

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, settings(), app=app))
            nursery.start_soon(client, port)
            await app.in_flight.wait()
            os.kill(os.getpid(), signal.SIGTERM)
    assert results == [(200, b"hello /slow")]
    assert not app.cancelled


async def test_graceful_timeout_cancels_what_is_left() -> None:
    app = StubApp()
    results: list[tuple[int, bytes]] = []

    async def client(port: int) -> None:
        results.append(await get(port, "/hang"))

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(serve, settings(graceful_timeout_seconds=0.3), app=app)
            )
            nursery.start_soon(client, port)
            await app.in_flight.wait()
            os.kill(os.getpid(), signal.SIGINT)
    assert app.cancelled
    assert results == [(0, b"")]


async def test_second_signal_cancels_at_once() -> None:
    app = StubApp()
    with trio.fail_after(GUARD):  # far below the 60 s graceful timeout
        async with trio.open_nursery() as nursery:
            start = partial(serve, settings(graceful_timeout_seconds=60.0), app=app)
            port = await nursery.start(start)
            nursery.start_soon(get, port, "/hang")
            await app.in_flight.wait()
            # Two different signals: trio coalesces repeats of one signal still pending.
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
    assert app.cancelled


def test_hypercorn_config() -> None:
    config = hypercorn_config(
        Settings(server=ServerSettings(host="::1", port=8123, graceful_timeout_seconds=7.5,
                                       keep_alive_seconds=4.0))
    )
    assert config.bind == ["[::1]:8123"]
    # Hypercorn cancels only after the grace and the surfaces' final frames (serve).
    assert config.graceful_timeout == 7.5 + FINAL_FRAMES_SECONDS
    assert config.accesslog is None
    assert config.keep_alive_timeout == 4.0


async def run_main(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDE_CODE__")}
    with trio.fail_after(GUARD):
        done = await trio.run_process(
            [sys.executable, "-m", "ccserver", *args],
            env={**environ, **env},
            cwd=tmp_path,  # no config/local.toml here
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return done.returncode, done.stderr.decode()


async def test_main_exits_2_naming_a_bad_setting(tmp_path: Path) -> None:
    code, stderr = await run_main(tmp_path, "--port", "0", CLAUDE_CODE__SERVER__PROT="1")
    assert code == 2
    assert "unknown setting server.prot" in stderr
    code, stderr = await run_main(
        tmp_path, "--port", "0", CLAUDE_CODE__CLAUDE__TIMEOUT_SECONDS="-1"
    )
    assert code == 2
    assert "claude.timeout_seconds: must be > 0" in stderr
    assert "Traceback" not in stderr


async def test_main_bad_flag_and_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[claude]\npermission_mode = "bypassPermissions"\n')
    code, stderr = await run_main(tmp_path, "--port", "0", "--config", str(config))
    assert (code, "claude.permission_mode: must be one of" in stderr) == (2, True)
    code, stderr = await run_main(tmp_path, "--port", "65536")
    assert (code, "server.port: must be in 0..65535" in stderr) == (2, True)


def test_settings_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings().server.port = 1  # type: ignore[misc]
