"""The one structured (logfmt) access-log line each request gets.

``key=value`` pairs in a fixed order, so both people and log tools read them. Handlers add
what only they know through ``scope["ccserver.log"]`` (`LOG_KEYS`); nothing else from the
request is logged: no headers (API keys live there), no bodies (prompts live there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ccproto import ToolCallsRequested, TurnFinished

__all__ = ["LOG_KEYS", "SCOPE_KEY", "access_line", "log_usage"]

#: Where a handler puts its dict of `LOG_KEYS` values (it may fill it in as it goes).
SCOPE_KEY = "ccserver.log"
#: What a handler may publish; other keys are ignored, so a handler cannot leak by accident.
LOG_KEYS = ("conversation_id", "model", "prompt_tokens", "completion_tokens", "cost_usd",
            "cache", "error_code")

_BARE = re.compile(r"^[A-Za-z0-9._:/+@{}-]+$")


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    # Quoted (JSON escapes) when it could split the line or the pair: a client-chosen path
    # with %0A in it must not forge a second log line.
    return text if _BARE.match(text) else json.dumps(text)


def access_line(*, request_id: str, method: str, path: str, status: int, duration: float,
                published: Mapping[str, Any] | None) -> str:
    """``request_id=... method=... path=... status=... duration_ms=...`` plus published keys."""
    pairs: list[tuple[str, object]] = [
        ("request_id", request_id), ("method", method), ("path", path), ("status", status),
        ("duration_ms", round(duration * 1000, 1)),
    ]
    published = published or {}
    pairs += [(k, published[k]) for k in LOG_KEYS if published.get(k) is not None]
    return " ".join(f"{k}={_value(v)}" for k, v in pairs)


def log_usage(published: dict[str, Any], event: object) -> None:
    """Publish a finished turn's tokens and cost for the access line and /stats; a turn
    that paused for client tool results has its tokens so far (the CLI tells the cost
    only at the turn's end)."""
    if type(event) is TurnFinished:
        published.update(prompt_tokens=event.usage.prompt_tokens,
                         completion_tokens=event.usage.output_tokens, cost_usd=event.cost_usd)
    elif type(event) is ToolCallsRequested:
        published.update(prompt_tokens=event.usage.prompt_tokens,
                         completion_tokens=event.usage.output_tokens)
