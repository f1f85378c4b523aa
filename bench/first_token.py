"""First token: the gateway (a warm pool process) vs the same warm CLI fed directly.

Each pair: a streaming request for a new conversation through the gateway, which takes a
warm pool process, and the floor: the same CLI (the invocation ccproto plans for the
gateway, as tool_roundtrip's floor: same argv and env, its own session and config dir)
started before the pair, left to warm up as long as the pool's process, and fed the same
user line on its stdin. Both are timed to the first text delta: from the request sent to
the first SSE chunk with content, and from the stdin write to the first ``text_delta`` on
the CLI's stdout. What the gateway adds is the ratio's excess over 1.

Both processes start together: the next floor is spawned as the gateway's request ends,
when the pool's refill of the process it took is starting too. Before each measurement
the script waits until the pool is full again plus 3 s (`settle`), and the two sides
alternate which goes first, so each is as warm as the other and no start-up overlaps a
measurement.

Usage: .venv/bin/python -m bench.first_token [pairs]
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from bench.harness import (
    Report,
    Stack,
    Timeline,
    arg,
    fake_prompt,
    median,
    settle,
    stack,
    stats,
    stream_chat,
)
from ccproto import Invocation

__all__ = ["WarmCLI", "main", "run"]

PROMPT = fake_prompt({"text": "The first token, then a few more words."})
GOAL = 1.10


class WarmCLI:
    """The gateway's warm process, started by hand: spawned now, fed later."""

    def __init__(self, inv: Invocation) -> None:
        self.inv = inv
        self.proc = subprocess.Popen(inv.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=dict(inv.env),
                                     cwd=inv.cwd)
        self._watchdog = threading.Timer(120.0, self.proc.kill)
        self._watchdog.start()

    def turn(self) -> Timeline:
        """Write the user line; time the stdout lines to the result, then let it exit."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        tl = Timeline()
        tl.start = t0 = time.perf_counter()
        self.proc.stdin.write(self.inv.stdin)
        self.proc.stdin.flush()
        fd, buf = self.proc.stdout.fileno(), b""
        while math.isnan(tl.done) and (data := os.read(fd, 1 << 16)):
            now = time.perf_counter() - t0
            *lines, buf = (buf + data).split(b"\n")
            for line in lines:
                if b'"text_delta"' in line and math.isnan(tl.first):
                    event = json.loads(line).get("event") or {}
                    if event.get("delta", {}).get("type") == "text_delta":
                        tl.first = now
                elif line.startswith(b'{"type":"result"'):
                    tl.done = now
        if math.isnan(tl.done):
            tl.error = "no result line"
        self.proc.stdin.close()  # EOF after its turn: it exits, its transcript complete
        self.proc.wait(timeout=30)
        return tl

    def close(self) -> None:
        self._watchdog.cancel()
        self.proc.kill()
        self.proc.wait()


def _spawn(st: Stack) -> WarmCLI:
    return WarmCLI(st.direct(PROMPT, name="floor"))


def run(argv: Sequence[str] = ()) -> Report:
    pairs = arg(argv, 0, 8)
    gw_first: list[float] = []
    floor_first: list[float] = []
    ratios: list[float] = []
    hits = 0
    with stack() as st, st.gateway("gw") as (_gw, client):
        floor = _spawn(st)  # with the pool's first warm process
        try:
            for i in range(pairs + 1):  # pair 0 warms caches on both sides and is dropped
                g = f = None
                for side in ("gw", "floor") if i % 2 == 0 else ("floor", "gw"):
                    before = settle(client)
                    if side == "floor":
                        f = floor.turn()
                        if f.error:
                            raise RuntimeError(f"floor: {f.error}")
                        continue
                    g = stream_chat(client, PROMPT)
                    if g.error or not g.conversation_id:
                        raise RuntimeError(f"gateway: {g.error}")
                    # The pool refills now: start the next floor with it.
                    next_floor = _spawn(st)
                    client.delete(f"/conversations/{g.conversation_id}")
                    if i > 0:
                        hits += stats(client)["pool"]["warm_hits"] - before["pool"]["warm_hits"]
                assert g is not None and f is not None
                floor.close()
                floor = next_floor
                if i == 0:
                    continue
                gw_first.append(g.first)
                floor_first.append(f.first)
                ratios.append(g.first / f.first)
        finally:
            floor.close()
    ratio = median(ratios)
    report = Report(
        title="First token: gateway (warm pool) / the same warm CLI fed directly",
        command=f".venv/bin/python -m bench.first_token {pairs}",
        headline=f"{ratio:.3f} (median of {pairs} pair ratios; goal ≤ {GOAL:.2f}: "
                 f"{'met' if ratio <= GOAL else 'NOT met'})",
        header=("side", "median", "min", "max"),
    )
    for name, xs in (("gateway, warm pool", gw_first), ("floor: warm CLI, stdin", floor_first)):
        report.rows.append((name, f"{median(xs) * 1000:.1f} ms", f"{min(xs) * 1000:.1f} ms",
                            f"{max(xs) * 1000:.1f} ms"))
    report.notes.append(f"gateway - floor: {(median(gw_first) - median(floor_first)) * 1000:+.1f}"
                        f" ms (difference of medians); pool hits {hits}/{pairs}")
    report.notes.append("first token = first SSE chunk with content, from the request sent / "
                        "first `text_delta` on the CLI's stdout, from the user line written")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
