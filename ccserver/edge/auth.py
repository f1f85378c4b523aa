"""Gateway API keys: who may call the server, and the refusal to serve a network unguarded.

Keys come from ``auth.api_keys`` and ``auth.keys_file``; with neither, every request is
let in, which is safe only on a loopback bind, so `bind_problem` makes start-up refuse a
non-loopback ``server.host`` without keys unless ``auth.allow_unauthenticated`` says so.
Keys are compared in constant time and never logged or echoed in an error.
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

from ..errors import Unauthorized
from ..settings import Settings, SettingsError
from ..settings.sections import AuthSettings
from .asgi import Scope, header
from .cors import Cors

__all__ = [
    "Auth", "bind_problem", "configured", "is_loopback", "load_keys", "presented_key",
    "unauthorized",
]


def configured(settings: AuthSettings) -> bool:
    """Whether requests must carry a key (an empty keys file is refused by `load_keys`)."""
    return bool(settings.api_keys or settings.keys_file)


def load_keys(settings: AuthSettings) -> tuple[bytes, ...]:
    """Every configured key: ``api_keys``, then the non-blank, non-# lines of ``keys_file``.

    Raises:
        SettingsError: the keys file cannot be read or holds no key (failing closed: a
            file meant to guard the server must not silently leave it open). The message
            names the file, never a key.
    """
    keys = [k.strip() for k in settings.api_keys]
    if settings.keys_file:
        path = Path(settings.keys_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"auth.keys_file: cannot read {path}: {exc}") from None
        from_file = [k for k in (line.strip() for line in text.splitlines())
                     if k and not k.startswith("#")]
        if not from_file:
            raise SettingsError(f"auth.keys_file: {path} holds no keys")
        keys += from_file
    return tuple(dict.fromkeys(k.encode() for k in keys if k))


def presented_key(scope: Scope) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY`` first, else ``x-api-key``."""
    authorization = header(scope, "authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    api_key = header(scope, "x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def unauthorized(given: bool) -> Unauthorized:
    """The 401 OpenAI sends for a missing or wrong key (same type and code)."""
    message = (
        "Incorrect API key provided" if given else
        "You didn't provide an API key: send it as 'Authorization: Bearer KEY' or 'x-api-key'"
    )
    return Unauthorized(message)


class Auth:
    """The request check; built once from the settings (the keys file is read here)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.enabled = configured(settings)
        self._keys = load_keys(settings)

    def check(self, scope: Scope) -> None:
        """Return if the request may proceed.

        Raises:
            Unauthorized: 401, when keys are configured and the request has none of them.
        """
        if not self.enabled:
            return
        given = presented_key(scope)
        if given is None:
            raise unauthorized(given=False)
        candidate = given.encode("latin-1")
        # Compare against every key without stopping early, so timing tells nothing about
        # which key (or how much of one) matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise unauthorized(given=True)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server to this machine."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def bind_problem(settings: Settings) -> str | None:
    """Why start-up must stop, or None: keys unreadable, or a network bind with no keys.

    The seed gateway exposed a shell to its network; an explicit
    ``auth.allow_unauthenticated = true`` is the only way to serve a network without keys.
    """
    try:
        keys = load_keys(settings.auth)
    except SettingsError as exc:
        return str(exc)
    host = settings.server.host
    if keys or configured(settings.auth) or settings.auth.allow_unauthenticated:
        return None
    if is_loopback(host):
        return None
    return (
        f"server.host is {host!r}, which is reachable from the network, and no API keys are "
        "configured: anyone could run Claude Code (and its tools) on this machine. Set "
        "auth.api_keys or auth.keys_file, bind 127.0.0.1, or set "
        "auth.allow_unauthenticated = true (env CLAUDE_CODE__AUTH__ALLOW_UNAUTHENTICATED=true)."
    )


def browser_problem(scope: Scope, auth: Auth, cors: Cors, server_host: str) -> str | None:
    """Why a request that may come from a web page is refused, or None.

    A page can POST to a local server without a CORS preflight (a text/plain body), and by
    DNS rebinding it can read the answers too. So an ``Origin`` that CORS does not allow
    is refused on every route, and a server without keys that listens on loopback answers
    only requests addressed to a loopback name (a rebound name arrives as the Host).
    """
    if header(scope, "origin") is not None and cors.allowed_origin(scope) is None:
        return "Requests from this browser origin are not allowed (see cors.allowed_origins)"
    host = header(scope, "host")
    if not auth.enabled and is_loopback(server_host) and host is not None:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not is_loopback(name):
            return f"Host {host!r} is not this server's loopback address"
    return None
