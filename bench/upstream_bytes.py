"""What one turn sends upstream: the bytes of the Messages API request the CLI makes.

Four cases, each through the gateway against the fake upstream (its request log records
every body's size): a plain chat turn ("hi" with a one-line system prompt) and a client
tool turn (the same plus one function tool), each with the default settings and with the
lean ones (Claude Code's tools off, the client's system prompt instead of Claude Code's).
Beside them, the equivalent raw Messages API request: what a client calling the API itself
would send.

Usage: .venv/bin/python -m bench.upstream_bytes
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from bench.harness import Report, Stack, stack

__all__ = ["main", "run"]

SYSTEM = "You are a concise assistant."
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
DEFAULT: dict[str, object] = {"pool.size": 0}
LEAN: dict[str, object] = {"pool.size": 0, "claude.tools": "",
                           "claude.system_prompt_mode": "replace"}
# Client tools with Claude Code's own tools and prompt kept.
TOOLS_AND_CLAUDE_CODE: dict[str, object] = {"pool.size": 0, "client_tools.claude_tools": "default",
                                            "client_tools.system_prompt_mode": "append"}


def _raw(tools: bool) -> int:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True, "system": SYSTEM,
        "messages": [{"role": "user", "content": "hi"}]}
    if tools:
        fn = TOOL["function"]
        assert isinstance(fn, dict)
        body["tools"] = [{"name": fn["name"], "description": fn["description"],
                          "input_schema": fn["parameters"]}]
    return len(json.dumps(body, separators=(",", ":")).encode())


def _measure(st: Stack, name: str, settings: Mapping[str, object], tools: bool) -> int:
    before = len(st.fake.messages_requests())
    with st.gateway(name, settings) as (_gw, client):
        body: dict[str, Any] = {"model": "sonnet", "messages": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]}
        if tools:
            body["tools"] = [TOOL]
        client.post("/chat/completions", json=body).raise_for_status()
    (request,) = st.fake.messages_requests()[before:]
    return int(request["size"])


def run(argv: Sequence[str] = ()) -> Report:
    del argv
    rows = []
    with stack() as st:
        for label, settings, tools in (
                ("plain turn, default settings", DEFAULT, False),
                ("plain turn, lean settings", LEAN, False),
                ("tool turn, default settings", DEFAULT, True),
                ("tool turn, Claude Code's tools and prompt kept", TOOLS_AND_CLAUDE_CODE, True)):
            size = _measure(st, label.replace(" ", "_").replace(",", "").replace("'", ""),
                            settings, tools)
            rows.append((label, size, _raw(tools)))
    report = Report(
        title="Upstream request bytes for one turn",
        command=".venv/bin/python -m bench.upstream_bytes",
        headline=f"tool turn, default settings: {rows[2][1] / rows[2][2]:.2f}x the raw request; "
                 f"plain turn, lean: {rows[1][1] / rows[1][2]:.2f}x",
        header=("turn", "upstream bytes", "raw Messages API request", "ratio"),
    )
    for label, size, raw in rows:
        report.rows.append((label, f"{size:,}", f"{raw:,}", f"{size / raw:.1f}x"))
    report.notes.append("raw = the same system prompt, message and tool as a direct Messages "
                        "API request would carry them (model, max_tokens, stream included)")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
