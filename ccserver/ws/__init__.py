"""The WebSocket surfaces: a bounded socket, the Responses API's WebSocket mode, our chat
completions protocol, and the route that checks the handshake and picks the surface.
"""

from __future__ import annotations

__all__: list[str] = []
