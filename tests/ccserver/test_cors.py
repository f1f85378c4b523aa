"""CORS: allowed origins get Access-Control-* headers on preflights and responses; others none."""

from __future__ import annotations

import pytest

from ccserver.app import App
from ccserver.settings import Settings
from ccserver.settings.sections import AuthSettings, CorsSettings
from tests.support.asgi_client import request

ORIGIN = "http://localhost:3000"
PREFLIGHT = [("origin", ORIGIN), ("access-control-request-method", "POST"),
             ("access-control-request-headers", "authorization, content-type, x-stainless-os")]


def app(**cors: object) -> App:
    return App(Settings(cors=CorsSettings(**cors)))  # type: ignore[arg-type]


async def test_preflight_from_an_allowed_origin() -> None:
    response = await request(app(allowed_origins=(ORIGIN,)), "OPTIONS", "/v1/chat/completions",
                             headers=PREFLIGHT)
    assert response.status == 204
    assert response.header("access-control-allow-origin") == ORIGIN
    assert response.header("access-control-allow-methods") == "POST, OPTIONS"
    # Authorization must be named: "*" would not cover it.
    assert response.header("access-control-allow-headers") == "authorization, content-type, x-stainless-os"
    assert response.header("access-control-max-age") == "600"
    assert response.header("vary") == "origin"


async def test_configured_header_list_and_max_age() -> None:
    gateway = app(allowed_origins=("*",), allowed_headers=("authorization", "content-type"),
                  max_age_seconds=60)
    response = await request(gateway, "OPTIONS", "/models/sonnet", headers=PREFLIGHT)
    assert response.header("access-control-allow-origin") == ORIGIN  # "*" echoes the origin
    assert response.header("access-control-allow-headers") == "authorization, content-type"
    assert response.header("access-control-allow-methods") == "GET, OPTIONS"
    assert response.header("access-control-max-age") == "60"


@pytest.mark.parametrize("origins", [(), ("https://other.example",)])
async def test_other_origins_get_no_cors_headers(origins: tuple[str, ...]) -> None:
    gateway = app(allowed_origins=origins)
    preflight = await request(gateway, "OPTIONS", "/v1/chat/completions", headers=PREFLIGHT)
    plain = await request(gateway, "GET", "/v1/models", headers=[("origin", ORIGIN)])
    # A page of another origin is refused outright: a simple POST needs no preflight.
    assert preflight.status == 204 and plain.status == 403
    assert plain.json()["error"]["code"] == "origin_not_allowed"
    for response in (preflight, plain):
        assert not any(name.startswith("access-control-") for name in response.header_names())


async def test_responses_and_errors_carry_the_origin_and_exposed_headers() -> None:
    gateway = App(Settings(cors=CorsSettings(allowed_origins=(ORIGIN,)),
                           auth=AuthSettings(api_keys=("k",))))
    ok = await request(gateway, "GET", "/v1/models", headers=[("origin", ORIGIN), ("x-api-key", "k")])
    refused = await request(gateway, "GET", "/v1/models", headers=[("origin", ORIGIN)])
    missing = await request(gateway, "GET", "/v1/nope", headers=[("origin", ORIGIN)])
    assert (ok.status, refused.status, missing.status) == (200, 401, 404)
    for response in (ok, refused, missing):
        # A page can only read the error (and its request id) with these.
        assert response.header("access-control-allow-origin") == ORIGIN
        exposed = response.header("access-control-expose-headers") or ""
        assert "x-request-id" in exposed and "retry-after" in exposed


async def test_preflight_passes_auth() -> None:
    gateway = App(Settings(cors=CorsSettings(allowed_origins=(ORIGIN,)),
                           auth=AuthSettings(api_keys=("k",))))
    response = await request(gateway, "OPTIONS", "/v1/chat/completions", headers=PREFLIGHT)
    assert response.status == 204 and response.header("access-control-allow-origin") == ORIGIN


@pytest.mark.parametrize("origin", ["http://localhost:3000/", "localhost:3000", "http://x/y"])
def test_bad_origins_are_refused_at_start_up(origin: str) -> None:
    with pytest.raises(ValueError, match="allowed_origins"):
        CorsSettings(allowed_origins=(origin,))


async def test_a_keyless_loopback_server_answers_only_loopback_host_names() -> None:
    # DNS rebinding: a page's own name resolving to 127.0.0.1 arrives as the Host header.
    open_server = App(Settings())
    for host, status in [("127.0.0.1:8080", 200), ("localhost:8080", 200), ("[::1]:8080", 200),
                         ("attacker.example:8080", 403)]:
        response = await request(open_server, "GET", "/v1/models", headers=[("host", host)])
        assert response.status == status, host
    keyed = App(Settings(auth=AuthSettings(api_keys=("k",))))
    response = await request(keyed, "GET", "/v1/models",
                             headers=[("host", "gateway.example"), ("x-api-key", "k")])
    assert response.status == 200
