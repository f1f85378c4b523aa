"""Which CLI process serves which turn: warm processes for new conversations, processes
bound to a conversation between its turns, the one cap on live processes, and the
admission queue in front of it.
"""

from __future__ import annotations

__all__: list[str] = []
