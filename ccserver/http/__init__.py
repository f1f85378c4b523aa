"""The HTTP routes, one module per route family: each reads its request, runs a turn
through `core` when it needs one, and renders the result for its surface.
"""

from __future__ import annotations

__all__: list[str] = []
