"""The raw ASGI application: lifespan, a route table, request ids and the error boundary.

Every route answers with and without the ``/v1`` prefix, and with a trailing slash,
because clients get base URLs wrong both ways (openai-wire.md §4 item 18).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

from ccproto import excerpt

from .edge.accesslog import SCOPE_KEY, access_line
from .edge.asgi import ClientGone, Receive, Scope, Send, header, send_json
from .edge.auth import Auth, browser_problem
from .edge.auth import configured as auth_configured
from .edge.cors import Cors
from .errors import MethodNotAllowed, OriginRefused, UnknownURL, error_payload, unwrap_single
from .gateway import Gateway
from .http.chat import chat_completions
from .http.conversations import (
    create_conversation,
    delete_conversation,
    get_conversation,
    list_conversations,
)
from .http.models import get_model, list_models
from .http.openapi import openapi_document, package_version
from .http.ops import serve_health, serve_metrics, serve_stats
from .http.responses import create_response, get_response
from .settings import Settings
from .ws.route import serve_websocket

__all__ = ["App", "make_app"]

log = logging.getLogger("ccserver.access")

Handler = Callable[[Gateway, Scope, Receive, Send, list[tuple[str, str]]], Awaitable[int]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Answer without an API key: a load balancer's health probe has none.
_OPEN_ROUTES = frozenset({"/health"})


async def _openapi(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                   headers: list[tuple[str, str]]) -> int:
    doc = openapi_document(ROUTES, version=package_version(),
                           auth_enabled=auth_configured(gw.settings.auth))
    await send_json(send, 200, doc, headers)
    return 200


# path (without /v1) -> {method: handler}; "{}" marks one path argument.
ROUTES: dict[str, dict[str, Handler]] = {
    "/chat/completions": {"POST": chat_completions},
    "/models": {"GET": list_models},
    "/models/{}": {"GET": get_model},
    "/health": {"GET": serve_health},
    "/stats": {"GET": serve_stats},
    "/metrics": {"GET": serve_metrics},
    "/openapi.json": {"GET": _openapi},
    "/conversations": {"POST": create_conversation, "GET": list_conversations},
    "/conversations/{}": {"GET": get_conversation, "DELETE": delete_conversation},
    "/responses": {"POST": create_response},
    "/responses/{}": {"GET": get_response},
}


def _route(path: str) -> tuple[str | None, str | None]:
    path = path.rstrip("/") or "/"
    if path.startswith("/v1/"):
        path = path[3:]
    if path in ROUTES:
        return path, None
    head, _, arg = path.rpartition("/")
    if arg and f"{head}/{{}}" in ROUTES:
        return f"{head}/{{}}", arg
    return None, None


class App:
    """The ASGI callable Hypercorn serves."""

    def __init__(self, settings: Settings, *, gateway: Gateway | None = None) -> None:
        self.gateway = gateway or Gateway(settings)
        self.auth = Auth(settings.auth)  # reads auth.keys_file once
        self.cors = Cors(settings.cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await serve_websocket(self.gateway, scope, receive, send, auth=self.auth,
                                  cors=self.cors)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # The nursery lives from start-up to shutdown: the gateway's housekeeping runs in it.
        async with trio.open_nursery() as nursery:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await nursery.start(self.gateway.run_link)
                        await self.gateway.start()
                        await nursery.start(self.gateway.run_background)
                    except Exception as exc:
                        log.exception("start-up failed")
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.gateway.wind_down()
                    # Ends the housekeeping: the pool kills what did not exit by itself.
                    nursery.cancel_scope.cancel()
                    break
        # Outside the cancelled nursery, or these would be cancelled too: no process and no
        # sweep is left to use the store when it closes.
        await self.gateway.stop()
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = trio.current_time()
        given = header(scope, "x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else f"req_{uuid.uuid4().hex}"
        headers = [("x-request-id", request_id), *self.cors.response_headers(scope)]
        method, path = scope["method"], scope["path"]
        response_started = False
        sent_status: int | None = None
        complete = False

        async def tracking_send(message: MutableMapping[str, Any]) -> None:
            nonlocal response_started, sent_status, complete
            response_started = True
            if message["type"] == "http.response.start":
                sent_status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        status = 500
        try:
            status = await self._dispatch(scope, receive, tracking_send, headers)
        except ClientGone:
            status = 499
        except Exception as exc:
            if response_started:
                raise  # nothing sane can be sent any more; Hypercorn drops the connection
            status, body, extra = error_payload(exc)
            await send_json(send, status, body, [*headers, *extra])
        finally:
            # In `finally` so a request that failed mid-response is still counted and logged.
            duration = trio.current_time() - started
            if status == 499 and complete and sent_status is not None:
                # The whole response went out, so the client did not leave early: Hypercorn
                # reports http.disconnect from inside the last send, and a handler watching
                # for it can be cancelled there before returning the status it sent.
                status = sent_status
            published = scope.get(SCOPE_KEY) or {}
            self.gateway.stats.record(endpoint=_route(path)[0] or "unmatched", method=method,
                                      status=status, duration=duration, log=published)
            log.info("%s", access_line(request_id=request_id, method=method, path=path,
                                       status=status, duration=duration, published=published))

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send,
                        headers: list[tuple[str, str]]) -> int:
        route, arg = _route(scope["path"])
        if route is None:
            raise UnknownURL(f"Unknown path: {excerpt(scope['path'])}")
        methods = ROUTES[route]
        allow = ", ".join([*methods, "OPTIONS"])
        if scope["method"] == "OPTIONS":
            # Never behind auth: browsers send preflights without credentials.
            cors = self.cors.preflight_headers(scope, methods)
            await send_json(send, 204, b"", [*headers, ("allow", allow), *cors])
            return 204
        problem = browser_problem(scope, self.auth, self.cors, self.gateway.settings.server.host)
        if problem is not None:
            raise OriginRefused(problem)
        if route not in _OPEN_ROUTES:
            self.auth.check(scope)
        handler = methods.get(scope["method"])
        if handler is None:
            # Sent here, not raised: the answer carries ``Allow``.
            await send_json(send, 405, MethodNotAllowed(scope["method"], scope["path"]).to_body(),
                            [*headers, ("allow", allow)])
            return 405
        scope["ccserver.path_arg"] = arg
        try:
            return await handler(self.gateway, scope, receive, send, headers)
        except BaseExceptionGroup as group:
            # Handlers run nurseries, which wrap what escapes them; one error is one error
            # (errors/groups.py, group policy). A lone Cancelled stays in its group, for trio.
            single = unwrap_single(group)
            if single is not group and isinstance(single, Exception):
                raise single from None
            raise


def make_app(settings: Settings) -> App:
    return App(settings)


