"""What one turn sends upstream: the bytes of the Messages API request the CLI makes.

Each case goes through the gateway against the fake upstream (its request log records
every body's size): a plain chat turn ("hi" with a one-line system prompt) and a client
tool turn (the same plus one function tool), with the default settings, with the lean
profile as the setting (``claude.profile = "lean"``), and with the lean profile picked per
request by the ``sonnet-chat`` model alias on a default-settings gateway. Beside them, the
equivalent raw Messages API request: what a client calling the API itself would send.
The lean profile's goal is at most 1.1x the raw request's bytes; the headline says
whether it is met.

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
LEAN: dict[str, object] = {"pool.size": 0, "claude.profile": "lean"}
GOAL = 1.1
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


def _text(body: Mapping[str, Any]) -> int:
    """Characters of prompt text (system blocks and message text): what costs input tokens,
    unlike the request's parameters (metadata, thinking, cache_control ...)."""
    system = body.get("system") or []
    blocks = [system] if isinstance(system, str) else [b.get("text", "") for b in system]
    for message in body["messages"]:
        content = message["content"]
        blocks += [content] if isinstance(content, str) else [
            b.get("text", "") for b in content if b.get("type") == "text"]
    return sum(len(t) for t in blocks)


def _measure(st: Stack, name: str, settings: Mapping[str, object], tools: bool,
             model: str) -> tuple[int, int]:
    before = len(st.fake.messages_requests())
    with st.gateway(name, settings) as (_gw, client):
        body: dict[str, Any] = {"model": model, "messages": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]}
        if tools:
            body["tools"] = [TOOL]
        client.post("/chat/completions", json=body).raise_for_status()
    (request,) = st.fake.messages_requests()[before:]
    return int(request["size"]), _text(request["body"])


def run(argv: Sequence[str] = ()) -> Report:
    del argv
    rows = []
    lean: list[float] = []
    with stack() as st:
        for label, settings, tools, model in (
                ("plain turn, default settings", DEFAULT, False, "sonnet"),
                ("plain turn, claude.profile = lean", LEAN, False, "sonnet"),
                ("plain turn, model sonnet-chat (lean), default settings", DEFAULT, False,
                 "sonnet-chat"),
                ("tool turn, default settings", DEFAULT, True, "sonnet"),
                ("tool turn, model sonnet-chat (lean), default settings", DEFAULT, True,
                 "sonnet-chat"),
                ("tool turn, Claude Code's tools and prompt kept", TOOLS_AND_CLAUDE_CODE, True,
                 "sonnet")):
            name = "".join(c if c.isalnum() else "_" for c in label)
            size, text = _measure(st, name, settings, tools, model)
            rows.append((label, size, _raw(tools), text))
            if "lean" in label:
                lean.append(size / _raw(tools))
    met = "met" if max(lean) <= GOAL else "NOT met"
    report = Report(
        title="Upstream request bytes for one turn",
        command=".venv/bin/python -m bench.upstream_bytes",
        headline=f"lean goal <= {GOAL}x the raw request: {met} (lean plain turn "
                 f"{rows[2][1] / rows[2][2]:.2f}x, lean tool turn {rows[4][1] / rows[4][2]:.2f}x;"
                 f" default plain turn {rows[0][1] / rows[0][2]:.0f}x)",
        header=("turn", "upstream bytes", "raw Messages API request", "ratio",
                "prompt text chars (raw: " + str(len(SYSTEM) + len("hi")) + ")"),
    )
    for label, size, raw, text in rows:
        report.rows.append((label, f"{size:,}", f"{raw:,}", f"{size / raw:.1f}x", f"{text:,}"))
    report.notes.append("raw = the same system prompt, message and tool as a direct Messages "
                        "API request would carry them (model, max_tokens, stream included)")
    report.notes.append(
        "prompt text = system blocks and message text, what costs input tokens (tool "
        "definitions aside); the rest of the bytes are request parameters")
    report.notes.append(
        "what lean still adds (README: Profiles): in system, the billing attribution block "
        "(CLAUDE_CODE_ATTRIBUTION_HEADER=0 drops it; kept: it attributes the request to "
        "Claude Code) and the Agent SDK identity line (always sent); a <system-reminder> "
        "with the date before the message (always sent); metadata.user_id; thinking and "
        "output_config (Claude Code's adaptive thinking; MAX_THINKING_TOKENS=0 drops it, "
        "kept: it changes the answers); cache_control marks (they make repeats cheaper); "
        "tools: []")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
