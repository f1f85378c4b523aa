"""One Claude Code CLI process: finding and probing the CLI, spawning it in its own
process group, reading one turn from its stdout with deadlines, and killing it with
everything it started. Knows no pool, conversation or HTTP.
"""

from __future__ import annotations

__all__: list[str] = []
