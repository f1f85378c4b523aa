"""CORS: which browser origins may call the gateway, and the answer to their preflights.

Browser clients (Open WebUI direct connections, Chatbox, Obsidian plugins, Electron apps)
send ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method`` before a POST with an
``Authorization`` header (openai-wire.md §4 item 16). Only origins in
``cors.allowed_origins`` get ``Access-Control-*`` headers; every other origin gets none, and
the browser then blocks the call. The default allows none: a page a user happens to visit
must not be able to drive the Claude Code on their machine.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..settings.sections import CorsSettings
from .asgi import Scope, header

__all__ = ["EXPOSED_HEADERS", "Cors"]

#: Response headers a page's script may read (the rest are hidden by the browser).
EXPOSED_HEADERS = (
    "x-request-id", "x-conversation-id", "x-cache", "retry-after", "x-should-retry",
)


class Cors:
    def __init__(self, settings: CorsSettings) -> None:
        self._origins = frozenset(settings.allowed_origins)
        self._any = "*" in self._origins
        self._reflect_headers = "*" in settings.allowed_headers
        self._headers = ", ".join(h for h in settings.allowed_headers if h != "*")
        self._max_age = str(settings.max_age_seconds)

    @property
    def enabled(self) -> bool:
        return bool(self._origins)

    def allowed_origin(self, scope: Scope) -> str | None:
        """The request's ``Origin`` if it may be served, else None."""
        origin = header(scope, "origin")
        if origin is None or not (self._any or origin in self._origins):
            return None
        return origin

    def response_headers(self, scope: Scope) -> list[tuple[str, str]]:
        """Headers every response to this request carries (none without an allowed origin)."""
        if not self._origins:
            return []
        # The answer depends on Origin, so a shared cache must not hand it to another page.
        vary = [("vary", "origin")]
        origin = self.allowed_origin(scope)
        if origin is None:
            return vary
        # The origin is echoed rather than "*": correct for every origin, any config.
        return [*vary, ("access-control-allow-origin", origin),
                ("access-control-expose-headers", ", ".join(EXPOSED_HEADERS))]

    def preflight_headers(self, scope: Scope, methods: Iterable[str]) -> list[tuple[str, str]]:
        """The ``Access-Control-Allow-*`` answer to a preflight for a route with ``methods``.

        Empty for an origin that is not allowed: the browser then refuses the real request.
        """
        if self.allowed_origin(scope) is None:
            return []
        requested = header(scope, "access-control-request-headers") or ""
        # "*" in Access-Control-Allow-Headers does not cover Authorization (Fetch spec), so a
        # wildcard setting echoes exactly the headers the browser asked for instead.
        allowed = requested if self._reflect_headers else self._headers
        headers = [("access-control-allow-methods", ", ".join([*methods, "OPTIONS"])),
                   ("access-control-max-age", self._max_age)]
        if allowed.strip():
            headers.append(("access-control-allow-headers", allowed))
        return headers
