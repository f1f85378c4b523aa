"""ccproto translation throughput vs bare `json.loads` over the same recorded CLI lines.

For every recorded transcript (tests/data/transcripts/*.jsonl, the real CLI's stdout) the
ccproto side does what the server does per streamed request: `CLIStream` splits and decodes
the lines (fed one line per read, as pipes deliver them), `Turn` turns records into events,
`ChunkBuilder` makes chat.completion.chunk objects and `dumps` + `encode_data` frames them
as SSE. The baseline only runs `json.loads` on each line. Both are timed in-process, best of
several repeats, so the ratio is what translating costs over merely parsing.

Usage: .venv/bin/python -m bench.translate [rounds] [repeats]
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.harness import ROOT, Report, arg
from ccproto import NEED_DATA, ChunkBuilder, CLIStream, Exit, Turn, dumps, encode_data

__all__ = ["main", "run", "translate"]

TRANSCRIPTS = ROOT / "tests" / "data" / "transcripts"


def translate(lines: Sequence[bytes], returncode: int) -> int:
    """Run one recorded stdout through ccproto; returns the SSE bytes produced."""
    stream, turn = CLIStream(), Turn()
    builder = ChunkBuilder(completion_id="chatcmpl-bench", created=0, model="sonnet",
                           include_usage=True, conversation_id="conv_bench")
    size = len(encode_data(dumps(builder.start())))

    def drain() -> int:
        produced = 0
        while (record := stream.next_event()) is not NEED_DATA:
            for event in turn.feed(record):  # type: ignore[arg-type] # not NEED_DATA here
                for chunk in builder.feed(event):
                    produced += len(encode_data(dumps(chunk)))
            if type(record) is Exit:
                return produced  # the stream's last event
        return produced

    for line in lines:
        stream.receive_data(line)
        size += drain()
    stream.receive_data(b"")
    stream.receive_exit(returncode)
    return size + drain()


def parse_only(lines: Sequence[bytes]) -> int:
    return sum(1 for line in lines if json.loads(line) is not None)


def _best(fn: Callable[[], object], rounds: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / rounds


def run(argv: Sequence[str] = ()) -> Report:
    rounds, repeats = arg(argv, 0, 200), arg(argv, 1, 5)
    report = Report(
        title="ccproto translation vs bare json.loads (recorded CLI stdout)",
        command=f".venv/bin/python -m bench.translate {rounds} {repeats}",
        headline="",
        header=("transcript", "lines", "json.loads / line", "ccproto / line", "ratio"),
    )
    total_parse = total_translate = 0.0
    total_lines = 0
    for path in sorted(TRANSCRIPTS.glob("*.jsonl")):
        lines = [line + b"\n" for line in path.read_bytes().splitlines() if line.strip()]
        meta = json.loads(Path(str(path)[: -len(".jsonl")] + ".meta.json").read_text())
        code = int(meta.get("returncode", 0))
        translate(lines, code)  # warm up, and fail loudly before timing if it cannot run
        parse = _best(functools.partial(parse_only, lines), rounds, repeats)
        full = _best(functools.partial(translate, lines, code), rounds, repeats)
        total_parse, total_translate = total_parse + parse, total_translate + full
        total_lines += len(lines)
        n = len(lines)
        report.rows.append((path.stem, str(n), f"{parse / n * 1e6:.1f} µs",
                            f"{full / n * 1e6:.1f} µs", f"{full / parse:.2f}×"))
    ratio = total_translate / total_parse
    report.rows.append(("all", str(total_lines), f"{total_parse / total_lines * 1e6:.1f} µs",
                        f"{total_translate / total_lines * 1e6:.1f} µs", f"{ratio:.2f}×"))
    report.headline = (f"{ratio:.2f}× the time of json.loads over all {total_lines} lines "
                       f"(goal ≤ 3×: {'met' if ratio <= 3 else 'NOT met'}); "
                       f"{total_lines / total_translate:,.0f} lines/s translated")
    report.notes.append(f"best of {repeats} repeats of {rounds} rounds per transcript; the "
                        "ccproto side includes its own json.loads of every line")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
