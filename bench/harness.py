"""Shared parts of the bench scripts: the fake API, gateways, direct CLI runs, timed streams.

Every script measures the gateway side by side with the CLI run directly, in one run,
against the same fake upstream. The direct side runs the invocation ccproto plans for the
gateway (same argv and env; only the session id, working directory and config dir are its
own), so a ratio isolates what the gateway adds or saves.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx

from ccproto import Invocation, PlanOptions, SessionPlan, plan_invocation, structure_request
from ccserver.edge.metrics import percentile
from tests.support.fakeapi import CLAUDE_BIN, FakeAPI, cli_env, running_fakeapi
from tests.support.gateway import Gateway, running_gateway

__all__ = [
    "CLAUDE_BIN", "ROOT", "Report", "Stack", "Timeline", "arg", "fake_prompt",
    "median", "percentile", "post_chat", "run_direct", "settle", "stack", "stats", "stream_chat",
]

ROOT = Path(__file__).resolve().parents[1]
_WATCHDOG_S = 120.0  # no single run in this suite should come near this


def arg(argv: Sequence[str], i: int, default: int) -> int:
    """The i-th positional count from argv, else ``default``."""
    return int(argv[i]) if len(argv) > i else default


def fake_prompt(directive: Mapping[str, Any], text: str = "Answer briefly.") -> str:
    return f"{text} [[fake {json.dumps(directive)}]]"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


@attrs.define
class Timeline:
    """One turn seen from the client: seconds since the request (or spawn) was sent."""

    first: float = math.nan  # first text content
    done: float = math.nan  # the answer is complete: `[DONE]`, or the CLI's result line
    end: float = math.nan  # response closed, or the CLI process exited
    deltas: list[float] = attrs.Factory(list)  # arrival of every text delta
    texts: list[str] = attrs.Factory(list)  # and its text (gateway side)
    start: float = math.nan  # time.perf_counter() (CLOCK_MONOTONIC) when it was sent
    conversation_id: str = ""
    error: str = ""


@attrs.define
class Stack:
    """A fake API in a temp dir; gateways and direct runs each get their own dirs."""

    tmp: Path
    fake: FakeAPI

    def cli_env(self, name: str) -> dict[str, str]:
        return cli_env(self.fake, self.tmp / name / "cfg")

    @contextlib.contextmanager
    def gateway(self, name: str, settings: Mapping[str, object] | None = None, *,
                module: str = "ccserver", extra_env: Mapping[str, str] | None = None,
                ) -> Iterator[tuple[Gateway, httpx.Client]]:
        """A gateway with its own data dir, workspace and CLI config dir; ``settings`` by key
        (``"pool.size": 0`` becomes ``CLAUDE_CODE__POOL__SIZE=0``); ``module`` serves it
        (bench/phases.py traces one)."""
        home = self.tmp / name
        env = self.cli_env(name) | {
            "CLAUDE_CODE__SERVER__DATA_DIR": str(home / "data"),
            "CLAUDE_CODE__CLAUDE__WORKSPACE": str(home / "ws"),
            "CLAUDE_CODE__CLAUDE__MAX_RETRIES": "0",
        }
        for key, value in (settings or {}).items():
            env["CLAUDE_CODE__" + key.upper().replace(".", "__")] = str(value)
        env |= extra_env or {}
        with running_gateway(env, module=module) as gw, \
                httpx.Client(base_url=gw.v1, timeout=180) as client:
            try:
                yield gw, client
            finally:
                # Warnings and errors are findings too: show them with the numbers.
                bad = [line for line in gw.log if " WARNING " in line or " ERROR " in line]
                for line in bad[:10]:
                    print(f"[{name}] {line}", file=sys.stderr)

    def direct(self, prompt: str, *, session_id: str | None = None, resume: bool = False,
               name: str = "direct") -> Invocation:
        """What the gateway would run for ``prompt``, in a working dir of its own."""
        cwd = self.tmp / name / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        request = structure_request(json.dumps(
            {"model": "sonnet", "stream": True, "messages": [{"role": "user", "content": prompt}]}))
        options = PlanOptions(executable=CLAUDE_BIN, cwd=str(cwd), max_retries=0)
        session = SessionPlan(session_id=session_id or str(uuid.uuid4()), resume=resume,
                              cwd=str(cwd))
        return plan_invocation(request, options, inherited_env=self.cli_env(name),
                               session=session)


@contextlib.contextmanager
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="ccbench-") as name:
        with running_fakeapi(Path(name)) as fake:
            yield Stack(Path(name), fake)


def run_direct(inv: Invocation) -> Timeline:
    """Start the CLI cold, write the prompt, close stdin; time its stdout lines."""
    tl = Timeline()
    tl.start = t0 = time.perf_counter()
    proc = subprocess.Popen(inv.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=dict(inv.env), cwd=inv.cwd)
    watchdog = threading.Timer(_WATCHDOG_S, proc.kill)
    watchdog.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(inv.stdin)
        proc.stdin.close()
        fd, buf = proc.stdout.fileno(), b""
        while data := os.read(fd, 1 << 16):
            now = time.perf_counter() - t0
            *lines, buf = (buf + data).split(b"\n")
            for line in lines:
                _direct_line(tl, line, now)
        proc.wait()
        tl.end = time.perf_counter() - t0
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
    if math.isnan(tl.done) and not tl.error:
        tl.error = f"no result line (exit {proc.returncode})"
    return tl


def _direct_line(tl: Timeline, line: bytes, now: float) -> None:
    if b'"text_delta"' in line:
        record = json.loads(line)
        event = record.get("event") or {}
        if (record.get("type") == "stream_event" and record.get("parent_tool_use_id") is None
                and event.get("delta", {}).get("type") == "text_delta"):
            tl.deltas.append(now)
            if math.isnan(tl.first):
                tl.first = now
    elif line.startswith(b'{"type":"result"'):
        tl.done = now
        if json.loads(line).get("is_error"):
            tl.error = "result is_error"


def stream_chat(client: httpx.Client, prompt: str, conversation_id: str = "") -> Timeline:
    """One streaming chat completion through the gateway, timing each content chunk."""
    body: dict[str, Any] = {"model": "sonnet", "stream": True,
                            "messages": [{"role": "user", "content": prompt}]}
    if conversation_id:
        body["conversation_id"] = conversation_id
    tl = Timeline()
    tl.start = t0 = time.perf_counter()
    try:
        with client.stream("POST", "/chat/completions", json=body) as response:
            if response.status_code != 200:
                tl.error = f"HTTP {response.status_code}: {response.read()[:200]!r}"
                return tl
            for line in response.iter_lines():
                now = time.perf_counter() - t0
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    tl.done = now
                    continue
                chunk = json.loads(line[6:])
                tl.conversation_id = chunk.get("conversation_id") or tl.conversation_id
                if "error" in chunk:
                    tl.error = str(chunk["error"])[:200]
                for choice in chunk.get("choices", ()):
                    if text := choice["delta"].get("content"):
                        tl.deltas.append(now)
                        tl.texts.append(text)
                        if math.isnan(tl.first):
                            tl.first = now
        tl.end = time.perf_counter() - t0
    except httpx.HTTPError as exc:
        tl.error = f"{type(exc).__name__}: {exc}"
    return tl


def post_chat(client: httpx.Client, prompt: str) -> tuple[float, str]:
    """One non-streaming completion: (seconds, conversation id)."""
    t0 = time.perf_counter()
    response = client.post("/chat/completions", json={
        "model": "sonnet", "messages": [{"role": "user", "content": prompt}]})
    elapsed = time.perf_counter() - t0
    response.raise_for_status()
    return elapsed, str(response.json()["conversation_id"])


def stats(client: httpx.Client) -> dict[str, Any]:
    return dict(client.get("/stats").json())


def settle(client: httpx.Client, warm_age: float = 3.0, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until no turn runs, the pool is full and nothing spawns, then ``warm_age`` more
    seconds: a CLI needs ~3 s after spawn before it answers at warm speed (reference §6.5)."""
    deadline = time.monotonic() + timeout
    while True:
        s = stats(client)
        pool = s.get("pool", {})
        if (s["processes"]["live"] == 0 and pool.get("spawning", 0) == 0
                and pool.get("warm", 0) >= pool.get("size", 0)) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(warm_age)
    return stats(client)


@attrs.define
class Report:
    """One script's result: a headline with its goal, and a table."""

    title: str
    command: str
    headline: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)

    def text(self) -> str:
        table = (self.header, *self.rows)
        widths = [max(len(r[i]) for r in table) for i in range(len(self.header))]
        lines = [f"== {self.title}", f"   {self.headline}"]
        for row in table:
            lines.append("   " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        return "\n".join(lines + [f"   note: {n}" for n in self.notes])

    def markdown(self) -> str:
        out = [f"### {self.title}", "", f"**{self.headline}**", "", f"`{self.command}`", "",
               "| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(out + [""] + [f"- {n}" for n in self.notes])
