"""The operator routes: ``GET /health``, ``GET /stats`` and ``GET /metrics``.

They answer from start-up state and live counters alone; no CLI runs for them.
"""

from __future__ import annotations

from typing import Any

from ..edge.asgi import Receive, Scope, Send, send_bytes, send_json, start_response
from ..edge.metrics import METRICS_CONTENT_TYPE
from ..gateway import Gateway

__all__ = ["serve_health", "serve_metrics", "serve_stats"]


async def serve_health(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                       headers: list[tuple[str, str]]) -> int:
    info = gw.cli_info
    cli: dict[str, Any] = {"path": gw.cli_path}
    if info is not None:
        cli |= {"version": info.version, "logged_in": info.logged_in,
                "auth_method": info.auth_method, "error": info.error}
    ok = gw.cli_path is not None
    if not ok:
        cli["error"] = gw.cli_missing_message()
    body = {
        "status": "ok" if ok else "unavailable",
        "cli": cli,
        "live_processes": gw.admission.live,
        "queued_requests": gw.admission.queued,
        "pool": gw.pool.stats(),
    }
    status = 200 if ok else 503
    await send_json(send, status, body, headers)
    return status


async def serve_stats(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                      headers: list[tuple[str, str]]) -> int:
    """``GET /stats``."""
    await send_json(send, 200, gw.stats.snapshot(), headers)
    return 200


async def serve_metrics(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                        headers: list[tuple[str, str]]) -> int:
    """``GET /metrics``."""
    data = gw.stats.prometheus()
    await start_response(send, 200, [("content-type", METRICS_CONTENT_TYPE),
                                     ("content-length", str(len(data))), *headers])
    await send_bytes(send, data, more=False)
    return 200
