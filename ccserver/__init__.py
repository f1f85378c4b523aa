"""ccserver: the Trio server that puts the Claude Code CLI behind the OpenAI API."""

from __future__ import annotations

__all__: list[str] = []
