"""Codex CLI, pinned from npm like Claude Code, runs ``codex exec`` against the gateway.

The fake model asks Codex to run a shell command through Codex's own tool; Codex runs it
and sends the output back (a ``function_call_output`` in a resent, ``store: false``
history), the held call is answered, and the same Claude Code turn gives the final answer.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e import directive, gateway_env
from tests.support.fakeapi import REPO_ROOT, FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway

CODEX = REPO_ROOT / "node_modules" / ".bin" / "codex"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("codex")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, server__sse_keepalive_seconds="600", pool__size="0")
        with running_gateway(env) as gw:
            yield fake, gw


def _codex(gw: Gateway, tmp: Path, prompt: str) -> tuple[int, list[dict[str, Any]]]:
    home, work = tmp / "codex_home", tmp / "work"
    home.mkdir()
    work.mkdir()
    # A provider of our own: the built-in "openai" one tries WebSockets and its own hosts.
    # Plugins and analytics off: they would reach for hosts this machine cannot see.
    (home / "config.toml").write_text(f"""
model = "sonnet"
model_provider = "gateway"
approval_policy = "never"
sandbox_mode = "danger-full-access"
[features]
plugins = false
[analytics]
enabled = false
[model_providers.gateway]
name = "Gateway"
base_url = "{gw.v1}"
env_key = "GATEWAY_API_KEY"
wire_api = "responses"
""")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "CODEX_HOME": str(home),
           "GATEWAY_API_KEY": "sk-unused"}
    # stdin closed: with a pipe open, codex exec waits for more prompt on it.
    done = subprocess.run(
        [str(CODEX), "exec", "--json", "--ephemeral", "--skip-git-repo-check",
         "--dangerously-bypass-approvals-and-sandbox", "-C", str(work), prompt],
        stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=120, check=False)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith(b"{")]
    return done.returncode, events


def test_codex_runs_a_command_through_the_gateway(stack: tuple[FakeAPI, Gateway],
                                                  tmp_path: Path) -> None:
    fake, gw = stack
    script = directive(steps=[
        {"text": "I will run it.", "tool_use": {"name": "exec_command",
                                                "input": {"cmd": "echo codex-was-here"}}},
        {"text": "The command printed codex-was-here."}])
    rc, events = _codex(gw, tmp_path, f"Run the command. {script}")
    assert rc == 0, events
    commands = [e["item"] for e in events if e.get("type") == "item.completed"
                and e["item"].get("type") == "command_execution"]
    assert commands and commands[0]["exit_code"] == 0
    assert "codex-was-here" in commands[0]["aggregated_output"]
    messages = [e["item"]["text"] for e in events if e.get("type") == "item.completed"
                and e["item"].get("type") == "agent_message"]
    assert messages[-1].endswith("The command printed codex-was-here.")
    assert any(e.get("type") == "turn.completed" for e in events)
    # Upstream, the command's output came back as the genuine result of Claude's call.
    last = fake.messages_requests()[-1]["body"]["messages"]
    results = [b for m in last if isinstance(m["content"], list) for b in m["content"]
               if b.get("type") == "tool_result"]
    assert results and "codex-was-here" in json.dumps(results[-1]["content"])
