"""``GET /openapi.json``: an OpenAPI 3.1 document built from the app's route table.

The document lists exactly the routes the server has (``app.ROUTES``), each described from
`OPERATIONS`. A route without a description still appears, marked ``x-undocumented``, and
a test fails on that mark, so a new route cannot ship undocumented. Request and response
schemas are deliberately loose (``additionalProperties``): the wire contract is OpenAI's,
and the gateway accepts unknown fields.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["OPERATIONS", "document_path", "openapi_document", "package_version", "undocumented"]

_JSON = "application/json"
# Operational routes are conventionally unprefixed; the OpenAI ones are documented with /v1.
# Both forms answer either way (app._route).
_UNPREFIXED = frozenset({"/health", "/stats", "/metrics", "/openapi.json"})
_PARAM_NAMES = {
    "/models/{}": "model", "/conversations/{}": "conversation_id", "/responses/{}": "response_id",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any], description: str = "OK", media: str = _JSON) -> dict[str, Any]:
    return {"200": {"description": description, "content": {media: {"schema": schema}}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": schema}}}


_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}

#: (route pattern, method) -> the OpenAPI operation, minus parameters and error responses.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/chat/completions", "POST"): {
        "operationId": "createChatCompletion", "tags": ["chat"],
        "summary": "Create a chat completion, as JSON or an SSE stream (stream: true)",
        "requestBody": _body(_ref("ChatCompletionRequest")),
        "responses": {"200": {"description": "A completion, or a stream of chunks", "content": {
            _JSON: {"schema": _OBJECT}, "text/event-stream": {"schema": {"type": "string"}}}}},
    },
    ("/models", "GET"): {"operationId": "listModels", "tags": ["models"],
                         "summary": "The model ids the gateway accepts",
                         "responses": _ok(_ref("ModelList"))},
    ("/models/{}", "GET"): {"operationId": "retrieveModel", "tags": ["models"],
                            "summary": "One model", "responses": _ok(_ref("Model"))},
    ("/conversations", "POST"): {"operationId": "createConversation", "tags": ["conversations"],
                                 "summary": "Start a conversation (a Claude Code session)",
                                 "requestBody": _body(_OBJECT), "responses": _ok(_OBJECT)},
    ("/conversations", "GET"): {"operationId": "listConversations", "tags": ["conversations"],
                                "summary": "List conversations", "responses": _ok(_OBJECT)},
    ("/conversations/{}", "GET"): {"operationId": "getConversation", "tags": ["conversations"],
                                   "summary": "One conversation", "responses": _ok(_OBJECT)},
    ("/conversations/{}", "POST"): {"operationId": "updateConversation",
                                    "tags": ["conversations"],
                                    "summary": "Update a conversation's metadata",
                                    "requestBody": _body(_OBJECT), "responses": _ok(_OBJECT)},
    ("/conversations/{}", "DELETE"): {"operationId": "deleteConversation",
                                      "tags": ["conversations"],
                                      "summary": "Delete a conversation and its session",
                                      "responses": _ok(_OBJECT)},
    ("/responses", "POST"): {
        "operationId": "createResponse", "tags": ["responses"],
        "summary": "Create a model response (Responses API), as JSON or an SSE stream",
        "requestBody": _body(_OBJECT),
        "responses": {"200": {"description": "A response, or a stream of events", "content": {
            _JSON: {"schema": _OBJECT}, "text/event-stream": {"schema": {"type": "string"}}}}},
    },
    ("/responses/{}", "GET"): {"operationId": "getResponse", "tags": ["responses"],
                               "summary": "A stored response", "responses": _ok(_OBJECT)},
    ("/responses/{}", "DELETE"): {"operationId": "deleteResponse", "tags": ["responses"],
                                  "summary": "Delete a stored response",
                                  "responses": _ok(_OBJECT)},
    ("/health", "GET"): {"operationId": "health", "tags": ["operations"], "security": [],
                         "summary": "CLI path, version and login state; 503 without a CLI",
                         "responses": _ok(_OBJECT)},
    ("/stats", "GET"): {"operationId": "stats", "tags": ["operations"],
                        "summary": "Requests, tokens, cost, latency percentiles, processes, "
                                   "cache and other counters", "responses": _ok(_OBJECT)},
    ("/metrics", "GET"): {"operationId": "metrics", "tags": ["operations"],
                          "summary": "The same counters in Prometheus text format",
                          "responses": _ok({"type": "string"}, media="text/plain")},
    ("/openapi.json", "GET"): {"operationId": "openapi", "tags": ["operations"],
                               "summary": "This document", "responses": _ok(_OBJECT)},
}

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type"], "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}},
    "ChatCompletionRequest": {
        "type": "object", "required": ["model", "messages"], "additionalProperties": True,
        "properties": {
            "model": {"type": "string"}, "stream": {"type": "boolean"},
            "messages": {"type": "array", "items": _OBJECT},
            "conversation_id": {"type": "string"}, "reasoning_effort": {"type": "string"}}},
    "Model": {"type": "object", "required": ["id", "object"], "properties": {
        "id": {"type": "string"}, "object": {"const": "model"},
        "created": {"type": "integer"}, "owned_by": {"type": "string"}}},
    "ModelList": {"type": "object", "required": ["object", "data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}}},
}


def package_version() -> str:
    try:
        return importlib.metadata.version("ccserver")
    except importlib.metadata.PackageNotFoundError:  # run from a bare checkout
        return "0.0.0"


def document_path(route: str) -> str:
    """The documented path of a route pattern (``/models/{}`` -> ``/v1/models/{model}``)."""
    path = route.replace("{}", "{" + _PARAM_NAMES.get(route, "id") + "}")
    return path if route in _UNPREFIXED else "/v1" + path


def undocumented(routes: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """(route, method) pairs the server has but `OPERATIONS` does not describe."""
    return [(r, m) for r, methods in routes.items() for m in methods if (r, m) not in OPERATIONS]


def _operation(route: str, method: str) -> dict[str, Any]:
    found = OPERATIONS.get((route, method))
    op: dict[str, Any] = dict(found) if found else {
        "summary": f"{method} {route}", "x-undocumented": True, "responses": _ok(_OBJECT)}
    op["responses"] = {**op["responses"], "default": {
        "description": "An OpenAI-shaped error",
        "content": {_JSON: {"schema": _ref("Error")}}}}
    if "{}" in route:
        name = _PARAM_NAMES.get(route, "id")
        op["parameters"] = [{"name": name, "in": "path", "required": True,
                             "schema": {"type": "string"}}]
    return op


def openapi_document(routes: Mapping[str, Iterable[str]], *, version: str,
                     auth_enabled: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes`` (pattern -> methods), as a JSON-ready dict."""
    paths: dict[str, dict[str, Any]] = {}
    for route, methods in routes.items():
        item = paths.setdefault(document_path(route), {})
        for method in methods:
            item[method.lower()] = _operation(route, method)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "ccserver", "version": version, "description": (
            "An OpenAI-compatible gateway in front of the Claude Code CLI. Every path also "
            "answers with and without the /v1 prefix.")},
        "paths": paths,
        "components": {"schemas": _SCHEMAS},
    }
    if auth_enabled:
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        }
        # Either scheme will do; operations with their own "security" (health) override it.
        doc["security"] = [{"bearer": []}, {"apiKey": []}]
    else:
        for item in paths.values():
            for op in item.values():
                op.pop("security", None)
    return doc
