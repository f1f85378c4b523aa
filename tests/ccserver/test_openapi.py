"""/openapi.json describes every route the server has, and only those."""

from __future__ import annotations

from typing import Any

import pytest

from ccserver.app import ROUTES, App
from ccserver.http.openapi import OPERATIONS, document_path, openapi_document, undocumented
from ccserver.settings import Settings
from ccserver.settings.sections import AuthSettings
from tests.support.asgi_client import request


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


async def test_every_route_and_method_is_documented() -> None:
    doc = (await request(App(Settings()), "GET", "/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    assert undocumented(ROUTES) == []
    for route, methods in ROUTES.items():
        item = doc["paths"][document_path(route)]
        for method in methods:
            op = item[method.lower()]
            assert op["summary"] and "x-undocumented" not in op, (route, method)
            assert "default" in op["responses"] and "200" in op["responses"]
    # Nothing documented that the server does not serve.
    documented = {(p, m) for p, item in doc["paths"].items() for m in item}
    served = {(document_path(r), m.lower()) for r, ms in ROUTES.items() for m in ms}
    assert documented == served


def test_a_new_route_without_a_description_is_caught() -> None:
    routes = {**{r: list(ms) for r, ms in ROUTES.items()}, "/brand-new": ["GET"]}
    assert undocumented(routes) == [("/brand-new", "GET")]
    doc = openapi_document(routes, version="1", auth_enabled=False)
    assert doc["paths"]["/v1/brand-new"]["get"]["x-undocumented"] is True


@pytest.mark.parametrize(("route", "path"), [
    ("/chat/completions", "/v1/chat/completions"), ("/models/{}", "/v1/models/{model}"),
    ("/conversations/{}", "/v1/conversations/{conversation_id}"), ("/health", "/health"),
    ("/metrics", "/metrics"),
])
def test_document_paths(route: str, path: str) -> None:
    assert document_path(route) == path


def test_path_parameters_and_refs_resolve() -> None:
    doc = openapi_document(ROUTES, version="1", auth_enabled=False)
    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], ref
    param = doc["paths"]["/v1/models/{model}"]["get"]["parameters"][0]
    assert param == {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
    assert "security" not in doc


def test_routes_landing_later_are_already_described() -> None:
    # Routes other surfaces add (conversations, Responses API) keep this test green.
    for key in [("/conversations", "POST"), ("/conversations", "GET"),
                ("/conversations/{}", "GET"), ("/conversations/{}", "POST"),
                ("/conversations/{}", "DELETE"), ("/responses", "POST"),
                ("/responses/{}", "GET"), ("/responses/{}", "DELETE")]:
        assert key in OPERATIONS


async def test_with_keys_the_document_says_how_to_send_them() -> None:
    app = App(Settings(auth=AuthSettings(api_keys=("k",))))
    doc = (await request(app, "GET", "/v1/openapi.json", headers=[("x-api-key", "k")])).json()
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert doc["security"] == [{"bearer": []}, {"apiKey": []}]
    assert doc["paths"]["/health"]["get"]["security"] == []  # health is open
