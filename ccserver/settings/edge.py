"""The sections of the server's edge: who may connect (auth, CORS), the WebSocket surfaces'
limits, and the response cache. `Settings` (sections.py) composes them with the rest."""

from __future__ import annotations

import attrs

from .fields import NON_NEGATIVE, POSITIVE, check, setting

__all__ = ["AuthSettings", "CacheSettings", "CorsSettings", "WebSocketSettings"]

# An origin as browsers send it: scheme://host[:port], no path, no trailing slash.
_ORIGINS = check(
    lambda t: all(o == "*" or ("://" in o and "/" not in o.partition("://")[2]) for o in t),
    'each must be "*" or scheme://host[:port] with no path or trailing slash',
)


@attrs.frozen(kw_only=True)
class AuthSettings:
    # repr=False: a Settings repr in a log or traceback must never show a key.
    api_keys: tuple[str, ...] = setting(
        (), "keys clients send as Bearer or x-api-key; none (and no keys_file) = no check",
        repr=False,
    )
    keys_file: str = setting("", "file with more keys, one per line (# comments), read at start")
    allow_unauthenticated: bool = setting(
        False, "serve a non-loopback server.host without any keys (refused otherwise)"
    )


@attrs.frozen(kw_only=True)
class CorsSettings:
    allowed_origins: tuple[str, ...] = setting(
        (), 'browser origins allowed, e.g. ["http://localhost:3000"]; "*" = any; [] = none',
        _ORIGINS,
    )
    allowed_headers: tuple[str, ...] = setting(
        ("*",), 'request headers a preflight may allow; "*" = whatever the browser asks for'
    )
    max_age_seconds: int = setting(600, "how long browsers may cache a preflight", NON_NEGATIVE)


@attrs.frozen(kw_only=True)
class CacheSettings:
    enabled: bool = setting(False, "cache non-streaming, tool-free, stateless completions")
    max_entries: int = setting(
        1000, "least recently used entries go beyond this (in memory; a shared Redis "
        "cache is bounded by its TTL and Redis's maxmemory)", POSITIVE)
    ttl_seconds: float = setting(3600.0, "an entry is dropped this long after it was stored",
                                  POSITIVE)


@attrs.frozen(kw_only=True)
class WebSocketSettings:
    max_frame_bytes: int = setting(
        10485760, "largest client frame; a larger one gets an error frame", POSITIVE
    )
    max_concurrent_per_socket: int = setting(
        4, "requests one /v1/ws socket may run at once; more get an error frame", POSITIVE
    )
    send_queue: int = setting(
        256, "frames queued for a client; beyond it the client counts as not reading",
        POSITIVE,
    )
    send_timeout_seconds: float = setting(
        10.0, "a full send queue waits this long, then the socket is closed (1008)", POSITIVE
    )
