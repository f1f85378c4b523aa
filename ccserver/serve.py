"""Run the ASGI app on Hypercorn's trio worker until SIGINT/SIGTERM, then drain and stop."""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import hypercorn.trio
import hypercorn.trio.run
import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer

from .app import make_app
from .edge.drain import Drain
from .settings import Settings

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

__all__ = ["FINAL_FRAMES_SECONDS", "hypercorn_config", "serve"]

logger = logging.getLogger(__name__)

# Any raw ASGI callable; Hypercorn's own alias insists on its TypedDict scopes and messages.
App = Callable[[Any, Any, Any], Awaitable[None]]

#: After the grace, how long the surfaces have to send their final frames (an SSE error
#: event, a WebSocket close) before Hypercorn cancels whatever is left. Those frames are a
#: few hundred bytes each; this only bounds a client that does not read them.
FINAL_FRAMES_SECONDS = 5.0


class _ReleasingTCPServer(TCPServer):
    """Hypercorn's trio connection, letting go of its socket as soon as the client closes.

    Hypercorn 0.18's trio `TCPServer.run` reads in a task group that also holds the
    connection's idle timer, and closes the socket only after that group exits. On the
    client's EOF its read loop ends and the app is told ``http.disconnect``, but the idle
    timer (re-armed after every response) keeps the group, and so the socket, open until
    it fires: every connection a client closed sat in CLOSE-WAIT, holding its fd for the
    whole keep-alive timeout (hundreds of fds under one-shot requests). Its asyncio worker
    does close on EOF. Once the read loop is over the connection can serve nothing more,
    so stopping the timer there loses nothing and lets the group exit and close the fd.
    """

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()


def _release_closed_connections() -> None:
    # Hypercorn's trio worker builds each connection from this module global; no setting
    # chooses the class. The check makes an upgrade that moves it fail here, not silently.
    namespace = vars(hypercorn.trio.run)
    current = namespace.get("TCPServer")
    if current is not _ReleasingTCPServer:
        if current is not TCPServer:
            raise RuntimeError("hypercorn.trio.run.TCPServer is not Hypercorn's own class")
        namespace["TCPServer"] = _ReleasingTCPServer


def hypercorn_config(settings: Settings) -> Config:
    """Hypercorn's config for ``settings``: one plain-HTTP bind, no access log."""
    config = Config()
    config.bind = [f"{_url_host(settings)}:{settings.server.port}"]
    # Hypercorn enforces this as a deadline on every connection's handler once shutdown
    # starts; the grace itself ends earlier, with our `Drain.cut` (serve), so open streams
    # and sockets can still end in their own words before this cancels them.
    config.graceful_timeout = settings.server.graceful_timeout_seconds + FINAL_FRAMES_SECONDS
    # Hypercorn's idle timer: it runs from the connection's start until a request's head has
    # arrived, and again after each response, so it drops a silent or slow-heading client
    # as well as an idle keep-alive connection. It is paused while a request is in flight.
    config.keep_alive_timeout = settings.server.keep_alive_seconds
    # Twice the app's own frame limit: a frame between the two gets an error frame from
    # ccserver.ws and the socket stays open; only beyond this does Hypercorn close it (1009).
    config.websocket_max_message_size = 2 * max(settings.server.max_body_bytes,
                                                settings.websocket.max_frame_bytes)
    config.accesslog = None  # the app logs one line per request itself
    # A Logger (not "-") makes Hypercorn use ours as-is, so it follows our logging setup.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def serve(
    settings: Settings,
    *,
    app: App | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    drain: Drain | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``shutdown_trigger`` returns), then shut down gracefully.

    Shutdown stops accepting connections, closes idle ones, and gives in-flight requests
    ``server.graceful_timeout_seconds`` to finish. Then ``drain`` is cut: open streams end
    with an error event and WebSockets with a 1001 close (ccserver.edge.drain), and what
    is still running ``FINAL_FRAMES_SECONDS`` later is cancelled. A second signal cancels
    everything at once, as does cancelling ``serve`` itself.
    Signal handling needs the main thread, where ``trio.run`` normally is.

    Args:
        settings: the loaded settings.
        app: the ASGI app; None builds ``ccserver.app.make_app(settings)``.
        shutdown_trigger: an extra graceful-shutdown trigger, for embedding and tests.
        drain: what the app's surfaces watch; None: the built app's, when ``app`` is None.
        task_status: ``started`` with the TCP port actually bound (useful with port 0).
    """
    if app is None:
        built = make_app(settings)
        app, drain = built, built.gateway.drain
    _release_closed_connections()
    config = hypercorn_config(settings)
    draining = trio.Event()
    # Opened before binding, so a signal can never arrive with the default handler in place.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, signals, draining, nursery.cancel_scope, settings)
            if shutdown_trigger is not None:
                nursery.start_soon(_set_after, shutdown_trigger, draining)
            if drain is not None:
                grace = settings.server.graceful_timeout_seconds
                nursery.start_soon(_cut_after_grace, draining, drain, grace)
            serving = partial(_serve_then_cancel, app, config, draining, nursery.cancel_scope)
            binds: list[str] = await nursery.start(serving)
            # Hypercorn reports binds as "http://HOST:PORT" with the kernel's port.
            port = int(binds[0].rsplit(":", 1)[1])
            logger.info("ccserver listening on http://%s:%d", _url_host(settings), port)
            task_status.started(port)
    logger.info("ccserver stopped")


async def _serve_then_cancel(
    app: App,
    config: Config,
    draining: trio.Event,
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    framework = cast("ASGIFramework", app)
    # mode="asgi": Hypercorn's guess from the signature can mistake a callable object for WSGI.
    await hypercorn.trio.serve(
        framework, config, shutdown_trigger=draining.wait, task_status=task_status, mode="asgi"
    )
    scope.cancel()  # hypercorn is done: stop the signal watcher so serve() returns


async def _watch_signals(
    signals: AsyncIterator[int], draining: trio.Event, scope: trio.CancelScope, settings: Settings
) -> None:
    async for signum in signals:
        name = signal.Signals(signum).name
        if draining.is_set():
            logger.warning("%s again: cancelling in-flight requests now", name)
            scope.cancel()
            return
        logger.info(
            "%s: draining in-flight requests for up to %g s (send again to stop at once)",
            name,
            settings.server.graceful_timeout_seconds,
        )
        draining.set()


async def _cut_after_grace(draining: trio.Event, drain: Drain, grace: float) -> None:
    await draining.wait()
    # The grace in-flight requests were promised; Hypercorn's own deadline is later by
    # FINAL_FRAMES_SECONDS, which is when it cancels whatever has not finished by then.
    await trio.sleep(grace)
    logger.warning("shutdown grace of %g s is over: ending open streams and sockets", grace)
    drain.cut()


async def _set_after(trigger: Callable[[], Awaitable[None]], event: trio.Event) -> None:
    await trigger()
    event.set()


def _url_host(settings: Settings) -> str:
    host = settings.server.host
    return f"[{host}]" if ":" in host else host
