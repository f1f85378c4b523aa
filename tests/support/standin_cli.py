"""A stand-in for the Claude Code CLI, just enough for runner tests (run with sys.executable).

It reports the pids it creates on stdout as ``child <pid>`` / ``grandchild <pid>`` /
``orphan <pid>`` lines so tests can check /proc for survivors. Processes it starts in
their own session imitate the CLI's Bash tool (protocol reference §9).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

# `sh` in its own session running `sleep`, like the Bash tool's `bash -c` + `sleep`.
_TOOL = "sleep 300 & echo $!; wait"
# A tool command like `nohup server &`: sh exits at once, its `sleep` is orphaned mid-run.
_DAEMON = "sleep {} & echo $!"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _start_sh(script: str, env: dict[str, str] | None) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``script`` in its own session; returns it and the pid it echoes."""
    sh = subprocess.Popen(
        ["/bin/sh", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, start_new_session=True, env=env,
    )
    assert sh.stdout is not None
    pid = int(sh.stdout.readline())
    sh.stdout.close()
    return sh, pid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=0, help="stdout lines to print")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between lines")
    parser.add_argument("--stderr-mb", type=float, default=0.0, help="stderr flood size")
    parser.add_argument("--stdout-mb", type=float, default=0.0, help="stdout flood size")
    parser.add_argument("--sigint-stderr-kb", type=int, default=0, help="stderr on SIGINT")
    parser.add_argument("--echo-stdin", action="store_true", help="echo stdin until EOF")
    parser.add_argument("--tool", action="store_true", help="start an own-session sh+sleep")
    parser.add_argument("--daemon", action="store_true", help="orphan a sleep at once")
    parser.add_argument("--daemon-seconds", type=float, default=300.0)
    parser.add_argument("--orphan", action="store_true", help="leave an own-session sleep")
    parser.add_argument("--scrub-env", action="store_true", help="start tools with env={}")
    parser.add_argument("--hang", action="store_true", help="sleep until signalled")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument(
        "--sigint", choices=["clean", "orphan", "ignore"], default="clean",
        help="clean: kill own tool then exit 1 (the CLI); orphan: exit leaving it; ignore",
    )
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--kill-self", type=int, default=0, help="end by this signal")
    args = parser.parse_args()

    tool: subprocess.Popen[bytes] | None = None
    tool_env: dict[str, str] | None = {} if args.scrub_env else None

    def on_sigint(signum: int, frame: object) -> None:
        if args.sigint == "clean" and tool is not None:
            os.killpg(tool.pid, signal.SIGKILL)
            tool.wait()
        # The CLI writes its last lines (the result) before exiting: blocks on a full pipe.
        os.write(1, b"interrupted\n")
        data = b"z" * (args.sigint_stderr_kb * 1024) + b"SIGINT-END\n"
        while data:
            data = data[os.write(2, data) :]
        os._exit(1)

    signal.signal(signal.SIGINT, signal.SIG_IGN if args.sigint == "ignore" else on_sigint)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _say("ready")
    if args.tool:
        tool, sleeper = _start_sh(_TOOL, tool_env)
        _say(f"child {tool.pid}")
        _say(f"grandchild {sleeper}")
    if args.daemon:
        sh, sleeper = _start_sh(_DAEMON.format(args.daemon_seconds), tool_env)
        sh.wait()
        _say(f"daemon {sleeper}")
    if args.echo_stdin:
        for line in sys.stdin.buffer:
            _say("echo " + line.decode().rstrip("\n"))
        _say("stdin eof")
    for i in range(args.lines):
        _say(f"line {i}")
        time.sleep(args.delay)
    if args.stderr_mb:
        block = b"x" * 1023 + b"\n"
        for _ in range(int(args.stderr_mb * 1024)):
            sys.stderr.buffer.write(block)
        sys.stderr.buffer.write(b"STDERR-END\n")
        sys.stderr.flush()
        _say("flooded")
    for _ in range(int(args.stdout_mb * 1024)):
        sys.stdout.write("y" * 1023 + "\n")
    sys.stdout.flush()
    if args.orphan:
        orphan = subprocess.Popen(
            ["sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, env=tool_env,
        )
        _say(f"orphan {orphan.pid}")
    while args.hang:
        time.sleep(1)
    if args.kill_self:
        os.kill(os.getpid(), args.kill_self)
    sys.exit(args.exit_code)


if __name__ == "__main__":
    main()
