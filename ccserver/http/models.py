"""The model routes: ``GET /models`` and ``GET /models/{id}``.

They answer from settings and start-up state alone; no CLI runs for them.
"""

from __future__ import annotations

from ccproto import Model, ModelList, dumps, model_names, valid_models

from ..edge.asgi import Receive, Scope, Send, send_json
from ..errors import ModelNotFound
from ..gateway import Gateway

__all__ = ["get_model", "list_models"]

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
        raise ModelNotFound(model_id)
    await send_json(send, 200, dumps(Model(id=model_id)), headers)
    return 200
