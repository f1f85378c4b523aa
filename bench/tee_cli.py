"""A tee in front of the real CLI, for chunk_delay: run by path as a gateway's claude.command.

Usage: python bench/tee_cli.py LOG CLI [ARG ...]

Runs the CLI, forwards its stdout untouched and at once, and logs when each text delta left
it (CLOCK_MONOTONIC, as ``[time, text]`` JSON lines in LOG). Standard library only: it runs
as a script in the CLI's working directory, where the repo's packages are not importable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence


def tee(log_path: str, argv: Sequence[str]) -> int:
    """Run the CLI; forward its stdout at once, then log each text delta's time and text."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the CLI handles it; we end at its EOF
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE)  # stdin, stderr inherited
    assert proc.stdout is not None
    fd, out, buf = proc.stdout.fileno(), sys.stdout.fileno(), b""
    with open(log_path, "a", encoding="utf-8") as log:
        while data := os.read(fd, 1 << 16):
            now = time.perf_counter()
            view = memoryview(data)
            while view:
                view = view[os.write(out, view):]
            *lines, buf = (buf + data).split(b"\n")
            for line in lines:
                if b'"text_delta"' in line:
                    text = json.loads(line)["event"]["delta"]["text"]
                    log.write(json.dumps([now, text]) + "\n")
            log.flush()
    return proc.wait()


if __name__ == "__main__":
    sys.exit(tee(sys.argv[1], sys.argv[2:]))
