"""Run the whole bench suite and write the results into BENCHMARKS.md.

Each script starts its own fake upstream and gateway(s) and measures side by side with the
CLI run directly; this runs them one after the other (about 10 minutes with the defaults on
2 cores) and replaces the part of BENCHMARKS.md between the ``bench:begin`` / ``bench:end``
markers, leaving the rest (history) as it is.

Usage: .venv/bin/python -m bench.run_all [--no-write] [NAME=ARG[,ARG...] ...]
  e.g. .venv/bin/python -m bench.run_all ttft=4 concurrency=32:0,4:2
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bench.harness import CLAUDE_BIN, ROOT, Report

__all__ = ["SUITE", "main"]

#: Script modules in the order they run, each with its default arguments.
SUITE: dict[str, tuple[str, ...]] = {
    "ttft": (),
    "first_token": (),
    "second_turn": (),
    "nonstream_overhead": (),
    "chunk_delay": (),
    "translate": (),
    "tool_roundtrip": (),
    "upstream_bytes": (),
    "cluster": (),
    # Last: its bursts leave a load average that takes minutes to decay.
    "concurrency": (),
}
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
BENCHMARKS = ROOT / "BENCHMARKS.md"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               "unknown CPU")
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    version = subprocess.run([CLAUDE_BIN, "--version"], capture_output=True, text=True,
                             check=False).stdout.split(" ")[0]
    return (f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores ({cpu}), "
            f"{mem_kb / 2**20:.0f} GiB, Python {platform.python_version()}, CLI {version}")


def _args(overrides: Sequence[str]) -> dict[str, tuple[str, ...]]:
    chosen = dict(SUITE)
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in SUITE:
            raise SystemExit(f"unknown bench {name!r}; one of {', '.join(SUITE)}")
        # concurrency's arguments (N, its comma-separated limits, rounds) are split by
        # ":"; the others take counts
        chosen[name] = tuple(value.split(":" if name == "concurrency" else ","))
    return chosen


def render(reports: Sequence[Report], failures: Sequence[str], where: str, took: float) -> str:
    lines = [BEGIN, "", f"Latest run: {date.today().isoformat()}, {where}; the whole suite "
             f"took {took / 60:.1f} min (`.venv/bin/python -m bench.run_all`).", "",
             "| bench | result |", "|---|---|"]
    lines += [f"| {r.title} | {r.headline} |" for r in reports]
    lines += [f"| FAILED | {f} |" for f in failures]
    for report in reports:
        lines += ["", report.markdown()]
    return "\n".join([*lines, "", END])


def write(block: str) -> None:
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    BENCHMARKS.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    no_write = "--no-write" in argv
    chosen = _args([a for a in argv if a != "--no-write"])
    where = machine()
    print(f"machine: {where}", flush=True)
    reports: list[Report] = []
    failures: list[str] = []
    t0 = time.monotonic()
    for name, args in chosen.items():
        print(f"-- {name} {' '.join(args)}", flush=True)
        load = os.getloadavg()[0]  # the box is shared: note how busy it was
        try:
            report = importlib.import_module(f"bench.{name}").run(args)
            report.notes.append(f"1-min load average {load:.2f} when the script started "
                                "(it decays slowly: a burst just before still shows)")
        except Exception as exc:  # one broken bench must not lose the others' numbers
            traceback.print_exc()
            failures.append(f"{name}: {type(exc).__name__}: {exc}".replace("\n", " ")[:300])
            continue
        print(report.text(), flush=True)
        reports.append(report)
    block = render(reports, failures, where, time.monotonic() - t0)
    if not no_write:
        write(block)
        print(f"wrote {BENCHMARKS}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
