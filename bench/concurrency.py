"""Concurrency: N parallel streams at once; throughput, latency, errors, CPU and memory.

For each level (default 32 and 64) a fresh gateway (``claude.max_concurrent_sessions`` and
the queue sized for the level, pool at its defaults) gets N streaming requests for new
conversations at the same instant, one short answer each, from N client threads. While they
run, /proc is sampled every 0.25 s: the gateway's peak RSS, and every CLI process's peak RSS
(VmHWM) and PSS. CPU: the gateway's own utime+stime, and the CLI processes' from the
gateway's reaped-children times plus the live ones' (a process that was warm before the
burst counts only what it spent during it). The load generator shares the 2 cores.

Usage: .venv/bin/python -m bench.concurrency [levels, e.g. 32,64]
"""

from __future__ import annotations

import collections
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


def _level(n: int) -> dict[str, str]:
    settings = {"claude.max_concurrent_sessions": n, "claude.max_queued_requests": n,
                "claude.queue_timeout_seconds": 120}
    with stack() as st, st.gateway(f"gw{n}", settings) as (gw, client):
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

    ttft, done = [r.first for r in ok], [r.done for r in ok]
    rss = list(sampler.rss.values())
    return {
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


def _available() -> int:
    return _kb("/proc/meminfo", "MemAvailable")


def run(argv: Sequence[str] = ()) -> Report:
    levels = [int(x) for x in (argv[0] if argv else "32,64").split(",")]
    columns: dict[int, dict[str, str]] = {}
    notes = []
    for n in levels:
        need = n * 200 * _MB + 2 * 1024 * _MB  # ~130 MB PSS per CLI (reference §11), margin
        if _available() < need:
            notes.append(f"{n} streams skipped: MemAvailable {_available() // _MB} MiB "
                         f"< {need // _MB} MiB")
            continue
        columns[n] = _level(n)
    keys = next(iter(columns.values())).keys() if columns else []
    report = Report(
        title="Concurrency: N parallel streams, one short answer each",
        command=f".venv/bin/python -m bench.concurrency {','.join(map(str, levels))}",
        headline=" · ".join(f"{n} streams: {c['throughput']}, {c['streams ok / errors']} "
                            f"ok/errors, complete p99 {c['complete p50 / p99'].split(' / ')[1]}"
                            for n, c in columns.items()),
        header=("", *(f"{n} streams" for n in columns)),
        rows=[(k, *(c[k] for c in columns.values())) for k in keys],
        notes=[*notes, "load generator (threads + httpx) runs on the same 2 cores"],
    )
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
