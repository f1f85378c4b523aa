"""Concurrency: N parallel streams at once; throughput, latency, errors, CPU and memory.

A burst of N (default 32) new conversations runs side by side on separate gateways
(``claude.max_concurrent_sessions`` and the queue sized for N, pool at its defaults):
*all at once* (``claude.max_cold_starts`` = N: every CLI starts at once) and *limited*
(``claude.max_cold_starts`` at its default, one per core; or the limits given), the
sides alternating for the given rounds (default 1). Each gets N streaming requests at
the same instant, one short answer each, from N client threads. While they
run, /proc is sampled every 0.25 s: the gateway's peak RSS, and every CLI process's peak RSS
(VmHWM) and PSS. CPU: the gateway's own utime+stime, and the CLI processes' from the
gateway's reaped-children times plus the live ones' (a process that was warm before the
burst counts only what it spent during it). The load generator shares the 2 cores.

Goal (issue 12): first-token p50 limited <= 0.5x all at once, throughput >= 0.95x.

Usage: .venv/bin/python -m bench.concurrency [N [limits, e.g. 0,1,4 [rounds]]]
"""

from __future__ import annotations

import collections
import math
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import httpx

from bench.harness import (
    Report,
    Timeline,
    fake_prompt,
    median,
    percentile,
    settle,
    stack,
    stream_chat,
)
from tests.support.gateway import process_tree

__all__ = ["main", "run"]

PROMPT = fake_prompt({"text": "A short answer under load."})
_TICK = os.sysconf("SC_CLK_TCK")
_MB = 1024 * 1024


def _cpu(pid: int) -> tuple[float, float]:
    """(own utime+stime, reaped children's cutime+cstime) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK, (int(fields[13]) + int(fields[14])) / _TICK


def _kb(path: str, *keys: str) -> int:
    """Sum of the ``keys`` lines (kB) of a /proc status-like file, in bytes."""
    total = 0
    for line in Path(path).read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in keys:
            total += int(rest.split()[0]) * 1024
    return total


@attrs.define
class Sampler:
    """Polls the gateway's CLI children in a thread; per pid, the peaks and last CPU seen."""

    root: int
    rss: dict[int, int] = attrs.Factory(dict)
    pss: dict[int, int] = attrs.Factory(dict)
    private: dict[int, int] = attrs.Factory(dict)
    cpu: dict[int, float] = attrs.Factory(dict)
    peak_live: int = 0
    peak_pss_sum: int = 0
    stop: threading.Event = attrs.Factory(threading.Event)

    def clis(self) -> list[int]:
        return [pid for pid, cmd in process_tree(self.root).items() if "claude" in cmd]

    def sample(self, deep: bool) -> None:
        pids, pss_sum = self.clis(), 0
        for pid in pids:
            try:
                self.rss[pid] = max(self.rss.get(pid, 0), _kb(f"/proc/{pid}/status", "VmHWM"))
                self.cpu[pid] = _cpu(pid)[0]
                if deep:
                    rollup = f"/proc/{pid}/smaps_rollup"
                    pss = _kb(rollup, "Pss")
                    self.pss[pid] = max(self.pss.get(pid, 0), pss)
                    priv = _kb(rollup, "Private_Clean", "Private_Dirty")
                    self.private[pid] = max(self.private.get(pid, 0), priv)
                    pss_sum += pss
            except (OSError, ValueError, IndexError):
                continue  # it exited between the listing and the read
        self.peak_live = max(self.peak_live, len(pids))
        self.peak_pss_sum = max(self.peak_pss_sum, pss_sum)

    def loop(self) -> None:
        n = 0
        while not self.stop.wait(0.25):
            self.sample(deep=n % 2 == 0)
            n += 1


def _burst(base_url: str, n: int) -> tuple[list[Timeline], float]:
    barrier = threading.Barrier(n + 1)
    results: list[Timeline] = [Timeline() for _ in range(n)]

    def client(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=180) as c:
            barrier.wait()
            results[i] = stream_chat(c, PROMPT)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0


@attrs.define
class Side:
    """One burst's figures: the table's rows, and the raw ones the goal is judged on."""

    rows: dict[str, str]
    ttft: list[float]
    done: list[float]
    ok: int
    wall: float


def _level(n: int, cold_starts: int, name: str) -> Side:
    settings = {"claude.max_concurrent_sessions": n, "claude.max_queued_requests": n,
                "claude.queue_timeout_seconds": 120, "claude.max_cold_starts": cold_starts}
    with stack() as st, st.gateway(name, settings) as (gw, client):
        settle(client)
        pid = gw.proc.pid
        sampler = Sampler(pid)
        sampler.sample(deep=True)
        start_cli = {p: _cpu(p)[0] for p in sampler.clis()}
        own0, kids0 = _cpu(pid)
        thread = threading.Thread(target=sampler.loop)
        thread.start()
        results, wall = _burst(str(client.base_url), n)
        sampler.sample(deep=True)
        own1, kids1 = _cpu(pid)
        end_cli = {p: _cpu(p)[0] for p in sampler.clis()}
        sampler.stop.set()
        thread.join()
        gw_hwm = _kb(f"/proc/{pid}/status", "VmHWM")
        s = client.get("/stats").json()
    cli_cpu = (kids1 - kids0) + sum(end_cli.values()) - sum(start_cli.values())
    ok = [r for r in results if not r.error]
    errors = collections.Counter(r.error.split(":")[0] for r in results if r.error)
    seen = len(sampler.rss)
    pool = s.get("pool", {})

    def ms(values: list[float], p: float) -> str:
        return f"{percentile(values, p) * 1000:.0f} ms" if values else "-"

    def mib(values: Sequence[int], how: str) -> str:
        if not values:
            return "-"
        return f"{(median(values) if how == 'median' else max(values)) / _MB:.0f} MiB"

    # Sorted: percentile() takes an ascending list (thread order gave wrong p50/p99).
    ttft, done = sorted(r.first for r in ok), sorted(r.done for r in ok)
    rss = list(sampler.rss.values())
    rows = {
        "max_cold_starts": str(s.get("cold_starts", {}).get("limit", "?")),
        "streams ok / errors": f"{len(ok)} / {len(results) - len(ok)}"
                               + (f" {dict(errors)}" if errors else ""),
        "wall (first request to last [DONE])": f"{wall:.1f} s",
        "throughput": f"{len(ok) / wall:.2f} streams/s",
        "first token p50 / p99": f"{ms(ttft, 50)} / {ms(ttft, 99)}",
        "complete p50 / p99": f"{ms(done, 50)} / {ms(done, 99)}",
        "gateway CPU (own)": f"{own1 - own0:.2f} s",
        "gateway peak RSS": f"{gw_hwm / _MB:.0f} MiB",
        "CLI processes seen / peak live": f"{seen} / {sampler.peak_live}",
        "CLI CPU total / per process": f"{cli_cpu:.1f} s / {cli_cpu / max(seen, 1):.2f} s",
        "CLI peak RSS per process (median / max)":
            f"{mib(rss, 'median')} / {mib(rss, 'max')}",
        "CLI PSS / private per process (median)":
            f"{mib(list(sampler.pss.values()), 'median')} / "
            f"{mib(list(sampler.private.values()), 'median')}",
        "peak Σ PSS of CLIs": f"{sampler.peak_pss_sum / _MB / 1024:.1f} GiB",
        "pool warm_hits / cold_starts": f"{pool.get('warm_hits')} / {pool.get('cold_starts')}",
        "pool warm_started / retired / killed":
            f"{pool.get('warm_started')} / {pool.get('retired')} / {pool.get('killed')}",
    }
    return Side(rows, ttft, done, len(ok), wall)


def _available() -> int:
    return _kb("/proc/meminfo", "MemAvailable")


def _pooled(sides: list[Side]) -> Side:
    """Rounds of one side, pooled: every stream's times, the walls summed."""
    return Side(sides[-1].rows, sorted(t for x in sides for t in x.ttft),
                sorted(t for x in sides for t in x.done), sum(x.ok for x in sides),
                sum(x.wall for x in sides))


def run(argv: Sequence[str] = ()) -> Report:
    n = int(argv[0]) if argv else 32
    limits = [int(x) for x in (argv[1] if len(argv) > 1 else "0").split(",")]
    rounds = int(argv[2]) if len(argv) > 2 else 1
    need = n * 200 * _MB + 2 * 1024 * _MB  # ~130 MB PSS per CLI (reference §11), margin
    if _available() < need:
        return Report(title="Concurrency", command="", headline=(
            f"skipped: MemAvailable {_available() // _MB} MiB < {need // _MB} MiB"),
            header=("",))
    # Alternating, so a slower stretch of the machine weighs on both sides alike.
    runs: dict[int, list[Side]] = {k: [] for k in [n, *limits]}
    for r in range(rounds):
        for k in runs:
            runs[k].append(_level(n, k, f"gw{n}-k{k}-r{r}"))
    sides = {k: _pooled(v) for k, v in runs.items()}
    base = sides[n]

    def p(values: list[float], q: float) -> float:
        return percentile(values, q) if values else math.nan

    def figures(side: Side) -> dict[str, str]:
        return {
            "first token p50 / p99 (all rounds)":
                f"{p(side.ttft, 50) * 1000:.0f} / {p(side.ttft, 99) * 1000:.0f} ms",
            "complete p50 / p99 (all rounds)":
                f"{p(side.done, 50) * 1000:.0f} / {p(side.done, 99) * 1000:.0f} ms",
            "throughput (all rounds)": f"{side.ok / side.wall:.2f} streams/s",
        }

    columns = {k: {**figures(side), **side.rows} for k, side in sides.items()}
    verdicts, notes = [], []
    for k in limits:
        side = sides[k]
        ttft_ratio = p(side.ttft, 50) / p(base.ttft, 50)
        tput_ratio = (side.ok / side.wall) / (base.ok / base.wall)
        met = ttft_ratio <= 0.5 and tput_ratio >= 0.95
        label = "default" if k == 0 else f"{k}"
        verdicts.append(f"limit {label}: first-token p50 {ttft_ratio:.2f}x, throughput "
                        f"{tput_ratio:.2f}x of all at once ({'met' if met else 'NOT met'})")
        columns[k]["vs all at once: first token p50 / throughput"] = \
            f"{ttft_ratio:.2f}x / {tput_ratio:.2f}x"
    columns[n]["vs all at once: first token p50 / throughput"] = "1 / 1"
    keys = next(iter(columns.values())).keys()
    header = ("", *(f"all at once (K={n})" if k == n else
                    f"limited (K={'default' if k == 0 else k})" for k in columns))
    return Report(
        title=f"Concurrency: a burst of {n} new conversations, all at once vs limited "
              "cold starts",
        command=f".venv/bin/python -m bench.concurrency {n} {','.join(map(str, limits))} "
                f"{rounds}",
        headline=" · ".join(verdicts)
                 + " (goal: first-token p50 <= 0.5x, throughput >= 0.95x)",
        header=header,
        rows=[(key, *(c.get(key, "-") for c in columns.values())) for key in keys],
        notes=[*notes, f"{rounds} round(s), sides alternating; the rows below the ratios "
               "are the last round's", "load generator (threads + httpx) runs on the same "
               "2 cores"],
    )


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
