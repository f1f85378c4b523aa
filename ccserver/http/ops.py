"""The operator routes: ``GET /health``, ``GET /stats`` and ``GET /metrics``.

They answer from start-up state and live counters alone; no CLI runs for them.
"""

from __future__ import annotations

from typing import Any

from ..edge.asgi import Receive, Scope, Send, send_bytes, send_json, start_response
from ..edge.metrics import METRICS_CONTENT_TYPE
from ..errors import StoreUnavailable
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
    if gw.link is not None:
        # Without its shared store no conversation can go on: not healthy, and it says so.
        body["store"] = store = await gw.link.health()
        if not store["ok"]:
            ok, body["status"] = False, "unavailable"
    status = 200 if ok else 503
    await send_json(send, status, body, headers)
    return status


async def serve_stats(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                      headers: list[tuple[str, str]]) -> int:
    """``GET /stats``: this gateway's figures; with a shared store, also its id and the
    cluster's (an ``error`` instead when Redis does not answer: the rest still does)."""
    body: dict[str, Any] = gw.stats.snapshot()
    if gw.cluster_stats is not None:
        cluster: dict[str, Any]
        try:
            cluster = await gw.cluster_stats.read(body)
        except StoreUnavailable as exc:
            cluster = {"error": str(exc)}
        body |= {"gateway": gw.gateway_id, "cluster": cluster}
    await send_json(send, 200, body, headers)
    return 200


async def serve_metrics(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                        headers: list[tuple[str, str]]) -> int:
    """``GET /metrics``."""
    data = gw.stats.prometheus()
    await start_response(send, 200, [("content-type", METRICS_CONTENT_TYPE),
                                     ("content-length", str(len(data))), *headers])
    await send_bytes(send, data, more=False)
    return 200
