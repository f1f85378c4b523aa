"""Record real Claude Code CLI transcripts against the fake Anthropic API.

Usage, from the repo root: ``.venv/bin/python -m tests.support.record_transcripts [NAME ...]``
(default: every scenario).

For each scenario this starts nothing but the CLI (the fake runs once for all of them), feeds the
prompt as one stream-json line on a pipe, and writes into tests/data:

* ``transcripts/<name>.jsonl``: the CLI's stdout bytes, unmodified (the ccproto test data);
* ``transcripts/<name>.meta.json``: argv (binary path replaced by ``claude``), the env overrides,
  the stdin line, returncode, stderr text, the scenario's directive, and a summary of what the
  fake received (path, stream flag, model, message count per request).

Every run gets its own CLAUDE_CONFIG_DIR and cwd under a temp dir, so nothing leaks between
scenarios or from the user's own Claude setup.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from tests.support.fakeapi import (
    STREAM_JSON_ARGS,
    FakeAPI,
    run_claude,
    running_fakeapi,
    user_line,
)

OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "transcripts"
BASH_ECHO = {"name": "Bash", "input": {"command": "echo hi", "description": "Print hi"}}


@attrs.frozen(kw_only=True)
class Scenario:
    name: str
    directive: dict[str, Any] | None
    prompt: str = "Please answer."
    flags: tuple[str, ...] = ()
    env: dict[str, str] = attrs.field(factory=dict)
    timeout: float = 60.0

    def content(self) -> str:
        if self.directive is None:
            return self.prompt
        return f"{self.prompt} [[fake {json.dumps(self.directive)}]]"


_SUBAGENT_PROMPT = 'Find the answer. [[fake {"text": "The subagent found 42."}]]'

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="text_stream",
        directive={"text": "Streaming works: this answer arrives as several small text deltas."},
    ),
    Scenario(
        name="text_multi_message",
        directive={
            "steps": [
                {"text": "Let me run that.", "tool_use": BASH_ECHO},
                {"text": "The command printed hi."},
            ]
        },
        flags=("--allowedTools", "Bash"),
    ),
    Scenario(
        name="thinking_text",
        directive={"thinking": "The user wants a short answer.", "text": "Here is a short answer."},
    ),
    Scenario(
        name="tool_parallel",
        directive={
            "steps": [
                {
                    "text": "Running both.",
                    "tool_uses": [
                        {"name": "Bash", "input": {"command": "echo one", "description": "one"}},
                        {"name": "Bash", "input": {"command": "echo two", "description": "two"}},
                    ],
                },
                {"text": "Both commands ran."},
            ]
        },
        flags=("--allowedTools", "Bash"),
    ),
    Scenario(name="err401", directive={"error": {"status": 401}}),
    Scenario(
        name="err429",
        directive={"error": {"status": 429, "headers": {"retry-after": "1"}}},
    ),
    Scenario(name="err529", directive={"error": {"status": 529}}),
    Scenario(name="err500", directive={"error": {"status": 500}}),
    Scenario(name="err400", directive={"error": {"status": 400, "message": "bad request (fake)"}}),
    Scenario(
        name="retry_then_ok",
        directive={"text": "Worked on the second try.", "error": {"status": 529, "times": 1}},
        env={"CLAUDE_CODE_MAX_RETRIES": "1"},
    ),
    Scenario(
        name="midstream_error",
        directive={
            "text": "These words stream until the overloaded error interrupts them.",
            "midstream_error": {"after": 2, "type": "overloaded_error", "message": "Overloaded"},
        },
    ),
    Scenario(
        name="drop_fallback",
        directive={"text": "partial words before the drop happens", "drop_after": 3},
    ),
    Scenario(
        name="max_tokens_continue",
        directive={
            "steps": [
                {"text": "The first part was cut", "stop_reason": "max_tokens"},
                {"text": " and this is the continuation."},
            ]
        },
    ),
    Scenario(name="refusal", directive={"text": "I will not", "stop_reason": "refusal"}),
    Scenario(
        name="max_turns",
        directive={"steps": [{"text": "Running.", "tool_use": BASH_ECHO}, {"text": "unreached"}]},
        flags=("--allowedTools", "Bash", "--max-turns", "1"),
    ),
    Scenario(
        name="subagent",
        directive={
            "steps": [
                {
                    "text": "Delegating.",
                    "tool_use": {
                        "name": "Agent",
                        "input": {
                            "description": "Find the answer",
                            "prompt": _SUBAGENT_PROMPT,
                            "subagent_type": "general-purpose",
                        },
                    },
                },
                {"text": "The subagent says 42."},
            ]
        },
    ),
    Scenario(
        name="hang_timeout",
        directive={"hang": "before_headers"},
        env={"API_TIMEOUT_MS": "2000"},
    ),
    Scenario(
        name="resume_unknown",
        directive={"text": "never sent"},
        # A fixed, never-created session id keeps the transcript's error text reproducible.
        flags=("--resume", str(uuid.UUID("00000000-0000-4000-8000-00000000dead"))),
    ),
)


def _summary(requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for request in requests:
        body = request["body"] if isinstance(request["body"], dict) else {}
        out.append(
            {
                "path": request["path"],
                "stream": body.get("stream", False),
                "model": body.get("model"),
                "n_messages": len(body.get("messages", [])),
            }
        )
    return out


def record(fake: FakeAPI, scenario: Scenario, workdir: Path) -> dict[str, Any]:
    flags = ("--model", "sonnet", *scenario.flags)
    seen = len(fake.requests())
    proc = run_claude(
        fake, workdir, scenario.content(), *flags, env=scenario.env, timeout=scenario.timeout
    )
    (OUT_DIR / f"{scenario.name}.jsonl").write_bytes(proc.stdout)
    meta = {
        "name": scenario.name,
        "argv": ["claude", *STREAM_JSON_ARGS, *flags],
        "env": scenario.env,
        "stdin": user_line(scenario.content()).decode(),
        "returncode": proc.returncode,
        "stderr": proc.stderr.decode(errors="replace"),
        "directive": scenario.directive,
        # Scenarios run one at a time, so everything logged since the start is this run's.
        "requests": _summary(
            [r for r in fake.requests()[seen:] if r["path"].startswith("/v1/messages")]
        ),
    }
    text = json.dumps(meta, indent=1, ensure_ascii=False) + "\n"
    (OUT_DIR / f"{scenario.name}.meta.json").write_text(text, encoding="utf-8")
    return meta


def main(argv: Sequence[str]) -> int:
    wanted = set(argv) or {s.name for s in SCENARIOS}
    unknown = wanted - {s.name for s in SCENARIOS}
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ccserver-transcripts-") as tmp:
        with running_fakeapi(Path(tmp)) as fake:
            for scenario in SCENARIOS:
                if scenario.name not in wanted:
                    continue
                meta = record(fake, scenario, Path(tmp) / scenario.name)
                lines = (OUT_DIR / f"{scenario.name}.jsonl").read_bytes().count(b"\n")
                print(
                    f"{scenario.name:22} rc={meta['returncode']} lines={lines:3} "
                    f"requests={len(meta['requests'])}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
