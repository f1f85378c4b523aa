"""A client tool round trip: from sending the tool result to the continuation's first token.

Three ways to continue a turn whose model called a client tool, measured in one run:

* **gateway**: the call is held by the gateway's in-band MCP server; the client's next
  request (streaming, the results as ``tool`` messages) answers it and the same CLI turn
  goes on. Timed from sending that request to its first content chunk.
* **floor**: the same CLI, started the same way and driven directly: its held call is
  answered on its stdin, timed to the first ``text_delta`` on its stdout. No HTTP, no
  conversation lookup: what the gateway adds is the ratio's excess over 1.
* **respawn**: what gateways that end the turn do: a new ``claude -p --resume`` with the
  result as text, timed from spawn to the first ``text_delta``.

Each round alternates gateway and floor, so drift on a busy machine hits both.

Usage: .venv/bin/python -m bench.tool_roundtrip [rounds]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from bench.harness import CLAUDE_BIN, Report, Stack, arg, median, run_direct, settle, stack
from ccproto import (
    CLIStream,
    ControlRequest,
    PlanOptions,
    Result,
    SessionPlan,
    StreamEvent,
    ToolCallRequest,
    mcp_answer,
    plan_invocation,
    structure_request,
    tool_result_line,
)

__all__ = ["main", "run"]

TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
SCRIPT = {"steps": [{"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
                    {"text": "It is sunny in Paris, and that is the answer."}]}


def _prompt() -> str:
    # A fresh nonce per round: every round is a new conversation.
    return f"Weather? {uuid.uuid4().hex} [[fake {json.dumps(SCRIPT)}]]"


def _gateway_round(client: httpx.Client) -> float:
    messages: list[dict[str, Any]] = [{"role": "user", "content": _prompt()}]
    first = client.post("/chat/completions", json={
        "model": "sonnet", "messages": messages, "tools": [TOOL]}).json()
    message = first["choices"][0]["message"]
    (call,) = message["tool_calls"]
    messages += [message, {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    t0 = time.perf_counter()
    first_token = None
    with client.stream("POST", "/chat/completions", json={
            "model": "sonnet", "stream": True, "messages": messages, "tools": [TOOL]}) as resp:
        for line in resp.iter_lines():  # read to the end: the turn completes
            if first_token is None and line.startswith("data: {") and \
                    '"content":"' in line and \
                    json.loads(line[6:])["choices"][0]["delta"].get("content"):
                first_token = time.perf_counter() - t0
    if first_token is None:
        raise RuntimeError(f"gateway continuation gave no content ({resp.status_code})")
    client.delete(f"/conversations/{first['conversation_id']}")
    return first_token


class _DirectCLI:
    """The CLI the gateway would start for the tool request, driven on its own pipes."""

    def __init__(self, st: Stack, session_id: str) -> None:
        cwd = st.tmp / "direct" / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        request = structure_request(json.dumps({
            "model": "sonnet", "stream": True, "tools": [TOOL],
            "messages": [{"role": "user", "content": _prompt()}]}))
        options = PlanOptions(executable=CLAUDE_BIN, cwd=str(cwd), max_retries=0)
        self.inv = plan_invocation(request, options, inherited_env=st.cli_env("direct"),
                                   session=SessionPlan(session_id=session_id, resume=False,
                                                       cwd=str(cwd)))
        self.proc = subprocess.Popen(self.inv.argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=dict(self.inv.env), cwd=self.inv.cwd)
        self.stream = CLIStream()

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def next_record(self) -> Any:
        assert self.proc.stdout is not None
        while True:
            record = self.stream.next_event()
            if type(record).__name__ != "_NeedData":
                return record
            data = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not data:
                raise RuntimeError("the CLI exited")
            self.stream.receive_data(data)

    def hold_call(self) -> ToolCallRequest:
        """Write the prompt; answer the MCP handshake; return the call once its message
        ended (``stop_reason: tool_use``), as the gateway would."""
        self.send(self.inv.stdin)
        call = None
        while True:
            record = self.next_record()
            if isinstance(record, ControlRequest):
                reply = mcp_answer(record, self.inv.client_tools)
                if isinstance(reply, ToolCallRequest):
                    call = reply
                elif isinstance(reply, bytes):
                    self.send(reply)
            elif isinstance(record, StreamEvent) and call is not None and \
                    record.event.get("delta", {}).get("stop_reason") == "tool_use":
                return call

    def answer(self, call: ToolCallRequest) -> float:
        t0 = time.perf_counter()
        self.send(tool_result_line(call, "sunny"))
        while True:
            record = self.next_record()
            if isinstance(record, StreamEvent) and \
                    record.event.get("delta", {}).get("type") == "text_delta":
                return time.perf_counter() - t0

    def finish(self) -> None:
        """Read the turn to its result and let the CLI exit, its transcript complete."""
        while not isinstance(self.next_record(), Result):
            pass
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _floor_round(st: Stack) -> tuple[float, float]:
    """(floor: answer the held call on the live CLI; respawn: `--resume` with the result)."""
    session_id = str(uuid.uuid4())
    direct = _DirectCLI(st, session_id)
    try:
        floor = direct.answer(direct.hold_call())
        direct.finish()
    finally:
        direct.close()
    # The peers' way: the turn is over, a new process resumes with the result as text.
    cwd = direct.inv.cwd
    request = structure_request(json.dumps({"model": "sonnet", "stream": True, "messages": [
        {"role": "user", "content": "Result of get_weather: sunny " + _prompt()}]}))
    inv = plan_invocation(request, PlanOptions(executable=CLAUDE_BIN, cwd=cwd, max_retries=0),
                          inherited_env=st.cli_env("direct"),
                          session=SessionPlan(session_id=session_id, resume=True, cwd=cwd))
    respawn = run_direct(inv)
    if respawn.error:
        raise RuntimeError(f"respawn: {respawn.error}")
    return floor, respawn.first


def run(argv: Sequence[str] = ()) -> Report:
    rounds = arg(argv, 0, 8)
    gw, floor, respawn, ratios = [], [], [], []
    with stack() as st, st.gateway("gw", {"pool.size": 1}) as (_gw, client):
        settle(client)
        for i in range(rounds + 1):  # round 0 warms both sides and is dropped
            g = _gateway_round(client)
            settle(client, warm_age=1.0)
            f, r = _floor_round(st)
            settle(client, warm_age=1.0)
            if i == 0:
                continue
            gw.append(g)
            floor.append(f)
            respawn.append(r)
            ratios.append(g / f)
    ratio = median(ratios)
    report = Report(
        title="Client tool round trip: result sent -> first token of the continuation",
        command=f".venv/bin/python -m bench.tool_roundtrip {rounds}",
        headline=f"{ratio:.2f} gateway / floor (median of {rounds} round ratios; goal ≤ 1.2: "
                 f"{'met' if ratio <= 1.2 else 'NOT met'})",
        header=("way", "median", "min", "max"),
    )
    for name, xs in (("gateway, held call answered", gw), ("floor: the CLI's stdin", floor),
                     ("respawn with --resume", respawn)):
        report.rows.append((name, f"{median(xs) * 1000:.0f} ms", f"{min(xs) * 1000:.0f} ms",
                            f"{max(xs) * 1000:.0f} ms"))
    report.notes.append(f"respawn / gateway: {median(respawn) / median(gw):.1f}x")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
