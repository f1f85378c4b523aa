"""What the end-to-end modules share: a gateway's environment and the upstream request log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai

from tests.support.fakeapi import FakeAPI, cli_env
from tests.support.gateway import Gateway

__all__ = ["WEATHER", "client", "directive", "gateway_env", "upstream_turns"]

#: A client function tool (Chat Completions form) the fake upstream can be scripted to call.
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def gateway_env(fake: FakeAPI, tmp: Path, **settings: str) -> dict[str, str]:
    """The environment of a gateway on ``fake``, with its own dirs under ``tmp``.

    ``settings`` are ``section__key=value`` (e.g. ``pool__size="0"``); they win over the
    defaults here, which keep failures fast: no CLI retries, a short kill grace.
    """
    env = cli_env(fake, str(tmp / "cfg")) | {
        "CLAUDE_CODE__SERVER__DATA_DIR": str(tmp / "data"),
        "CLAUDE_CODE__CLAUDE__WORKSPACE": str(tmp / "ws"),
        "CLAUDE_CODE__CLAUDE__MAX_RETRIES": "0",
        "CLAUDE_CODE__CLAUDE__KILL_GRACE_SECONDS": "1",
    }
    return env | {f"CLAUDE_CODE__{key.upper()}": value for key, value in settings.items()}


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content
                     if b.get("type") == "text" and not b["text"].startswith("<system-reminder>"))


def upstream_turns(fake: FakeAPI, marker: str) -> list[tuple[str, str]]:
    """(role, text) of the last upstream request whose last turn holds ``marker``.

    The CLI's own system-reminder blocks are left out of the text.
    """
    for request in reversed(fake.messages_requests()):
        turns = [m for m in request["body"]["messages"] if m["role"] in ("user", "assistant")]
        if marker in _text(turns[-1]):
            return [(m["role"], _text(m)) for m in turns]
    raise AssertionError(f"no upstream request carries {marker!r}")


def client(gw: Gateway) -> openai.OpenAI:
    """The openai SDK on ``gw``: no retries (a test sees each failure), a generous timeout."""
    return openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0, timeout=60)


def directive(**script: object) -> str:
    """A ``[[fake {...}]]`` directive scripting the fake upstream's reply."""
    return f"[[fake {json.dumps(script)}]]"
