"""Non-streaming overhead: the gateway vs calling `claude -p` directly, same prompt, same fake.

Two gateways run side by side on one fake upstream: one with the warm pool (defaults) and
one with ``pool.size = 0`` and ``pool.idle_seconds = 0`` (every request starts its CLI cold
and the CLI exits after the turn, as before the pool existed). Each round sends the same
first-turn, non-streaming request to both, then runs the same invocation directly (argv and
env as ccproto plans them, session persisted like the gateway's). The machine is let settle
between runs. Ratios are medians of per-round ratios; the direct run is timed to its exit
(what `subprocess.run` or a non-streaming `claude -p` caller waits for, the baseline of the
pre-pool version of this script) and, stricter, to its result line (the answer complete).

Usage: .venv/bin/python -m bench.nonstream_overhead [rounds]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bench.harness import Report, arg, fake_prompt, median, post_chat, run_direct, settle, stack

__all__ = ["main", "run"]

PROMPT = fake_prompt({"text": "Hello from the benchmark, a short answer."}, "Say hi")
NO_POOL = {"pool.size": 0, "pool.idle_seconds": 0}


def run(argv: Sequence[str] = ()) -> Report:
    rounds = arg(argv, 0, 8)
    cols: dict[str, list[float]] = {k: [] for k in ("on", "off", "result", "exit")}
    with stack() as st, st.gateway("pool") as (_, on), st.gateway("nopool", NO_POOL) as (_, off):
        settle(off, 0)
        settle(on)
        for i in range(rounds + 1):  # round 0 warms caches everywhere and is dropped
            t_on, conversation = post_chat(on, PROMPT)
            on.delete(f"/conversations/{conversation}")
            settle(on)
            t_off, _ = post_chat(off, PROMPT)
            settle(off)
            d = run_direct(st.direct(PROMPT))
            if d.error:
                raise RuntimeError(f"direct: {d.error}")
            settle(on, 1.0)
            if i:
                for key, value in (("on", t_on), ("off", t_off), ("result", d.done),
                                   ("exit", d.end)):
                    cols[key].append(value)
        pool = settle(on, 0)["pool"]

    def ratio(a: str, b: str) -> float:
        return median([x / y for x, y in zip(cols[a], cols[b], strict=True)])

    r_off, r_on = ratio("off", "exit"), ratio("on", "exit")
    report = Report(
        title="Non-streaming first turn: gateway / direct `claude -p`",
        command=f".venv/bin/python -m bench.nonstream_overhead {rounds}",
        headline=f"pool off {r_off:.3f}, pool on {r_on:.3f} against the direct run to its exit "
                 f"(goal ≤ 1.05: {'met' if max(r_off, r_on) <= 1.05 else 'NOT met'}); stricter, "
                 f"against its result line: pool off {ratio('off', 'result'):.3f}, pool on "
                 f"{ratio('on', 'result'):.3f} (medians of {rounds} round ratios)",
        header=("side", "median", "min", "max", "/ direct result", "/ direct exit"),
    )
    rows = (("gateway, warm pool (defaults)", "on"),
            ("gateway, pool.size=0 idle_seconds=0", "off"),
            ("direct one-shot, to result line", "result"),
            ("direct one-shot, to exit", "exit"))
    for label, key in rows:
        xs = cols[key]
        report.rows.append((label, f"{median(xs) * 1000:.0f} ms", f"{min(xs) * 1000:.0f} ms",
                            f"{max(xs) * 1000:.0f} ms", f"{ratio(key, 'result'):.3f}",
                            f"{ratio(key, 'exit'):.3f}"))
    report.notes.append(f"pool-on gateway counters: warm_hits={pool['warm_hits']} "
                        f"misses={pool['misses']} cold_starts={pool['cold_starts']}")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
