"""ASGI plumbing every surface shares: the ASGI types and send helpers, API keys, CORS,
the access log and the request metrics. Knows no CLI, pool or conversation.
"""

from __future__ import annotations

__all__: list[str] = []
