"""Conversations as live Claude Code sessions: the store (SQLite, or Redis shared by
several gateways), the CLI's session files, one lock per conversation, which conversation
a request continues, and removal on request or after the idle timeout.
"""

from __future__ import annotations

__all__: list[str] = []
