"""Time to first token: gateway with a warm pool vs a cold `claude -p` run directly.

Each pair: a streaming request for a new conversation through the gateway (it should take
a warm pool process), then the same prompt as a direct one-shot stream-json CLI run. Both
time the first text delta from the moment the request is sent / the CLI is spawned.
Between requests the script waits until the pool is full again plus 3 s (a fresh CLI needs
that long to become warm) and deletes the gateway's conversation, so no CPU from refilling
or retiring overlaps a measurement.

Usage: .venv/bin/python -m bench.ttft [pairs]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bench.harness import Report, arg, fake_prompt, median, run_direct, settle, stack, stream_chat

__all__ = ["main", "run"]

PROMPT = fake_prompt({"text": "The first token, then a few more words."})


def run(argv: Sequence[str] = ()) -> Report:
    pairs = arg(argv, 0, 8)
    gw_first: list[float] = []
    d_first: list[float] = []
    ratios: list[float] = []
    hits = 0
    with stack() as st, st.gateway("gw") as (_gw, client):
        before = settle(client)
        for i in range(pairs + 1):  # pair 0 warms caches on both sides and is dropped
            hits_before = before["pool"]["warm_hits"]
            g = stream_chat(client, PROMPT)
            if g.error or g.conversation_id == "":
                raise RuntimeError(f"gateway: {g.error}")
            client.delete(f"/conversations/{g.conversation_id}")
            after = settle(client)  # quiet again before the direct run
            d = run_direct(st.direct(PROMPT))
            if d.error:
                raise RuntimeError(f"direct: {d.error}")
            before = settle(client)
            if i == 0:
                continue
            hits += after["pool"]["warm_hits"] - hits_before
            gw_first.append(g.first)
            d_first.append(d.first)
            ratios.append(g.first / d.first)
        pool = before["pool"]
    ratio = median(ratios)
    report = Report(
        title="Time to first token: gateway (warm pool) / direct cold `claude -p`",
        command=f".venv/bin/python -m bench.ttft {pairs}",
        headline=f"{ratio:.3f} (median of {pairs} pair ratios; goal ≤ 0.2: "
                 f"{'met' if ratio <= 0.2 else 'NOT met'})",
        header=("side", "median", "min", "max"),
    )
    for name, xs in (("gateway, warm pool", gw_first), ("direct cold one-shot", d_first)):
        report.rows.append((name, f"{median(xs) * 1000:.0f} ms", f"{min(xs) * 1000:.0f} ms",
                            f"{max(xs) * 1000:.0f} ms"))
    report.notes.append(
        f"pool hits {hits}/{pairs} measured requests; pool counters at the end: "
        f"warm_hits={pool['warm_hits']} misses={pool['misses']} "
        f"cold_starts={pool['cold_starts']} warm_started={pool['warm_started']}")
    report.notes.append("first token = first SSE chunk with content / first `text_delta` "
                        "stream_event on the CLI's stdout, from request sent / process spawned")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
