"""Non-streaming overhead: the gateway vs. calling `claude -p` directly, same prompt, same fake.

Runs the pairs alternately and prints the median of per-pair ratios (gateway / direct).
Usage: .venv/bin/python bench/nonstream_overhead.py [pairs]
"""

from __future__ import annotations

import json
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
from ccproto import PlanOptions, plan_invocation, structure_request
from tests.support.fakeapi import CLAUDE_BIN, cli_env, running_fakeapi
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
            # The direct run is planned by ccproto itself, so both sides run the same argv.
            request = structure_request(json.dumps(
                {"model": "sonnet", "messages": [{"role": "user", "content": PROMPT}]}))
            options = PlanOptions(executable=str(CLAUDE_BIN), cwd=str(tmp / "ws"), max_retries=0)
            direct = plan_invocation(request, options, inherited_env=env)
            with running_gateway(env) as gw:
                client = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
                ratios, g_times, d_times = [], [], []
                for _ in range(pairs + 1):
                    t0 = time.perf_counter()
                    client.chat.completions.create(
                        model="sonnet", messages=[{"role": "user", "content": PROMPT}])
                    g = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    subprocess.run(direct.argv, input=direct.stdin, env=direct.env,
                                   cwd=direct.cwd, capture_output=True, check=True)
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
