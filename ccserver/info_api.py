"""The info routes: ``GET /models``, ``GET /models/{id}`` and ``GET /health``.

They answer from settings and start-up state alone; no CLI runs for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ccproto import Model, ModelList, ProtocolError, dumps, model_names, valid_models

from .asgi import Receive, Scope, Send, send_json

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = ["get_model", "list_models", "serve_health"]

def _model_ids(gw: Gateway) -> list[str]:
    if gw.options is not None:
        return list(model_names(gw.options))
    c = gw.settings.claude
    return list(valid_models(c.model_map, (c.default_model, *gw.settings.server.models)))


async def list_models(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                      headers: list[tuple[str, str]]) -> int:
    listing = ModelList(data=tuple(Model(id=m) for m in _model_ids(gw)))
    await send_json(send, 200, dumps(listing), headers)
    return 200


async def get_model(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                    headers: list[tuple[str, str]]) -> int:
    model_id = scope["ccserver.path_arg"]
    if model_id not in _model_ids(gw):
        raise ProtocolError(f"The model '{model_id}' does not exist", status_hint=404,
                            error_type="invalid_request_error", code="model_not_found",
                            param="model")
    await send_json(send, 200, dumps(Model(id=model_id)), headers)
    return 200


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
