"""Non-streaming overhead: the gateway vs. calling `claude -p` directly, same prompt, same fake.

Runs the pairs alternately and prints the median of per-pair ratios (gateway / direct).
Usage: .venv/bin/python bench/nonstream_overhead.py [pairs]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.fakeapi import CLAUDE_BIN, cli_env, running_fakeapi, user_line
from tests.support.gateway import running_gateway

PROMPT = 'Say hi [[fake {"text": "Hello from the benchmark, a short answer."}]]'


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "ws").mkdir()
        with running_fakeapi(tmp) as fake:
            env = cli_env(fake, tmp / "cfg")
            env |= {"CLAUDE_CODE__CLAUDE__WORKSPACE": str(tmp / "ws"),
                    "CLAUDE_CODE__SERVER__DATA_DIR": str(tmp / "data"),
                    "CLAUDE_CODE__CLAUDE__MAX_RETRIES": "0"}
            argv = [str(CLAUDE_BIN), "-p", "--input-format", "stream-json", "--output-format",
                    "stream-json", "--verbose", "--include-partial-messages", "--model", "sonnet",
                    "--strict-mcp-config", "--no-session-persistence"]
            with running_gateway(env) as gw:
                client = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
                ratios, g_times, d_times = [], [], []
                for _ in range(pairs + 1):
                    t0 = time.perf_counter()
                    client.chat.completions.create(
                        model="sonnet", messages=[{"role": "user", "content": PROMPT}])
                    g = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    subprocess.run(argv, input=user_line(PROMPT), env=env, cwd=tmp / "ws",
                                   capture_output=True, check=True)
                    d = time.perf_counter() - t0
                    g_times.append(g)
                    d_times.append(d)
                    ratios.append(g / d)
    ratios, g_times, d_times = ratios[1:], g_times[1:], d_times[1:]  # first pair warms caches
    machine = f"{platform.machine()} {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(f"pairs={pairs} gateway median={statistics.median(g_times):.3f}s "
          f"direct median={statistics.median(d_times):.3f}s")
    print(f"non-streaming gateway/direct ratio (median of pairs): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
