"""Added inter-chunk delay on a slow stream: gateway SSE vs the CLI's own stdout.

The fake upstream sends N text deltas ``delay_ms`` apart. Each round streams once through
a plain gateway, once through a second gateway whose ``claude.command`` is a tee (tee_cli.py
beside this file: it runs the real CLI, forwards its stdout untouched and logs when each text
delta left the CLI), and once from a direct CLI run; the rounds alternate.

* paired (headline): for the tee'd gateway, every gap between consecutive deltas at the SSE
  client minus the same gap on the CLI's stdout, in the same stream; and the per-chunk hop
  latency (CLI stdout -> SSE client, one clock: CLOCK_MONOTONIC). The tee's own pipe hop is
  counted against the gateway.
* unpaired: gaps at the plain gateway's client vs gaps on a direct run's stdout, compared
  by percentile. Scheduler noise on a shared 2-core box dominates its tail.

Usage: .venv/bin/python -m bench.chunk_delay [rounds] [chunks] [delay_ms]
"""

from __future__ import annotations

import itertools
import json
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.harness import (
    CLAUDE_BIN,
    Report,
    Timeline,
    arg,
    fake_prompt,
    percentile,
    run_direct,
    settle,
    stack,
    stream_chat,
)

__all__ = ["main", "run"]

PS = (50, 90, 99, 100)


def _stream(client: httpx.Client, prompt: str) -> Timeline:
    """One stream for a new conversation; then the conversation goes and the pool refills."""
    tl = stream_chat(client, prompt)
    if tl.error:
        raise RuntimeError(tl.error)
    client.delete(f"/conversations/{tl.conversation_id}")
    settle(client)
    return tl


def _gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def _row(label: str, values: Sequence[float], sign: str = "") -> tuple[str, ...]:
    return (label, *(f"{percentile(values, p) * 1000:{sign}.2f} ms" for p in PS))


def _paired(g: Timeline, sent: dict[str, float]) -> tuple[list[float], list[float]]:
    """(per-chunk hop latency, client gap minus stdout gap) for one tee'd stream."""
    cli = [sent[text] for text in g.texts]
    client = [g.start + t for t in g.deltas]
    hops = [c - s for c, s in zip(client, cli, strict=True)]
    added = [a - b for a, b in zip(_gaps(client), _gaps(cli), strict=True)]
    return hops, added


def run(argv: Sequence[str] = ()) -> Report:
    rounds, chunks, delay_ms = arg(argv, 0, 6), arg(argv, 1, 60), arg(argv, 2, 20)

    def prompt(tag: str) -> str:  # unique chunk texts, so the tee's log matches the client's
        return fake_prompt({"chunks": [f"{tag}w{i} " for i in range(chunks)],
                            "delay_ms": delay_ms}, "Stream slowly.")

    plain: list[float] = []
    direct: list[float] = []
    hops: list[float] = []
    added: list[float] = []
    with stack() as st:
        log = st.tmp / "tee.jsonl"
        wrapper = st.tmp / "claude-tee"
        tee = Path(__file__).resolve().with_name("tee_cli.py")
        wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {tee} {log} {CLAUDE_BIN} \"$@\"\n")
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        with st.gateway("gw") as (_, gw), \
                st.gateway("tee", {"claude.command": wrapper}) as (_, teed):
            settle(gw, 0)
            settle(teed)
            for i in range(rounds + 1):  # round 0 warms caches everywhere and is dropped
                p = _stream(gw, prompt(f"r{i}p"))
                g = _stream(teed, prompt(f"r{i}t"))
                d = run_direct(st.direct(prompt(f"r{i}d")))
                if d.error:
                    raise RuntimeError(f"direct: {d.error}")
                settle(teed, 1.0)
                if i:
                    plain += _gaps(p.deltas)
                    direct += _gaps(d.deltas)
                    sent = dict((text, t) for t, text in map(json.loads, log.open()))
                    h, a = _paired(g, sent)
                    hops += h
                    added += a
    p99 = percentile(added, 99) * 1000
    report = Report(
        title=f"Added inter-chunk delay ({chunks} chunks, {delay_ms} ms apart upstream)",
        command=f".venv/bin/python -m bench.chunk_delay {rounds} {chunks} {delay_ms}",
        headline=f"added p50 {percentile(added, 50) * 1000:+.2f} ms, p99 {p99:+.2f} ms; "
                 f"hop CLI stdout -> client p50 {percentile(hops, 50) * 1000:.2f} ms, p99 "
                 f"{percentile(hops, 99) * 1000:.2f} ms (goal p99 ≤ 5 ms: "
                 f"{'met' if p99 <= 5 else 'NOT met'})",
        header=("", *(f"p{p}" if p < 100 else "max" for p in PS)),
        rows=[_row("paired: client gap - stdout gap, same stream", added, "+"),
              _row("paired: hop CLI stdout -> SSE client", hops),
              _row("unpaired: gap at the plain gateway's client", plain),
              _row("unpaired: gap on a direct run's stdout", direct)],
    )
    diff = [percentile(plain, p) - percentile(direct, p) for p in PS]
    report.rows.append(("unpaired: difference", *(f"{x * 1000:+.2f} ms" for x in diff)))
    report.notes.append(f"{rounds} streams per side; {len(added)} paired gaps, "
                        f"{len(plain)} / {len(direct)} unpaired gaps")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
