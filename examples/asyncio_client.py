"""One streaming chat completion from the Claude Code CLI, with asyncio and ccproto alone.

ccproto does no I/O, so any runtime can drive it: here an OpenAI Chat Completions request
becomes a CLI invocation, asyncio runs it, and its stdout becomes ``chat.completion.chunk``
server-sent events on ours, without ccserver or trio:

    python examples/asyncio_client.py "Say hello" --model haiku
    python examples/asyncio_client.py --messages '[{"role": "user", "content": "Hi"}]'

The CLI must be logged in (or have ANTHROPIC_API_KEY set). It runs in the current directory
with Claude Code's default tools and permission mode, and keeps no session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import ccproto

__all__ = ["main", "stream_completion"]

KILL_GRACE = 2.0  # seconds from SIGINT to SIGKILL when the CLI must be stopped
STDERR_TAIL = 8192  # bytes of the CLI's stderr kept: a failed run's error quotes them

Write = Callable[[bytes], None]
Process = asyncio.subprocess.Process


def sse(obj: Any) -> bytes:  # a chunk or an error body as one ``data: {...}`` event
    return ccproto.encode_data(ccproto.dumps(obj))


async def stream_completion(inv: ccproto.Invocation, builder: ccproto.ChunkBuilder,
                            write: Write, *, verbose: bool = False) -> bool:
    """Run ``inv``, writing its chunks as SSE; True if the turn finished, False if it failed.

    However this ends (the turn's end, an error, Ctrl-C, the task cancelled), the CLI and
    its process group are killed and the CLI reaped before it returns or raises.
    """
    proc = await asyncio.create_subprocess_exec(
        *inv.argv, env=dict(inv.env), cwd=inv.cwd, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        # A session and process group of its own: Ctrl-C in a terminal reaches only us (we
        # decide how the CLI stops), and one killpg reaches the CLI's plain children too.
        start_new_session=True,
    )
    if verbose:
        print(f"claude: pid {proc.pid}", file=sys.stderr, flush=True)
    tail = bytearray()
    # Both run beside the stdout loop: a large prompt or a chatty stderr must not leave the
    # CLI blocked on a full pipe while we wait for its stdout.
    helpers = [asyncio.create_task(_feed(proc, inv.stdin)),
               asyncio.create_task(_drain(proc, tail))]
    try:
        return await _relay(proc, tail, builder, write)
    finally:
        await _stop(proc)
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        if verbose:
            print(f"claude: exit status {proc.returncode}", file=sys.stderr, flush=True)


async def _relay(proc: Process, tail: bytearray, builder: ccproto.ChunkBuilder,
                 write: Write) -> bool:
    assert proc.stdout is not None
    stream, turn = ccproto.CLIStream(), ccproto.Turn()
    write(sse(builder.start()))
    try:
        while True:
            record = stream.next_event()
            if record is ccproto.NEED_DATA:
                data = await proc.stdout.read(65536)
                stream.receive_data(data)  # b"" is EOF
                if not data:
                    # The stream yields its Exit only after EOF, the last line and this.
                    stream.receive_exit(await proc.wait(), bytes(tail))
                continue
            # NEED_DATA is a plain sentinel object, which mypy cannot narrow away above.
            for event in turn.feed(record):  # type: ignore[arg-type]
                if isinstance(event, ccproto.TurnFailed):
                    raise event.error
                for chunk in builder.feed(event):
                    write(sse(chunk))
                if isinstance(event, ccproto.TurnFinished):
                    write(ccproto.DONE)
                    return True
    except ccproto.ProtocolError as exc:
        # The stream has started, so no HTTP status can say it: OpenAI sends an error event.
        write(sse(exc.to_body()) + ccproto.DONE)
        return False


async def _feed(proc: Process, data: bytes) -> None:
    assert proc.stdin is not None
    # The prompt line, then EOF: a one-shot CLI answers it and exits.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()


async def _drain(proc: Process, tail: bytearray) -> None:
    assert proc.stderr is not None
    while chunk := await proc.stderr.read(65536):
        tail += chunk
        del tail[:-STDERR_TAIL]


async def _stop(proc: Process) -> None:
    """Stop the CLI if it still runs, kill what is left of its group, and reap it."""
    try:
        if proc.returncode is None:
            # SIGINT first: the CLI then ends its turn and stops the tools it started in
            # sessions of their own, which no signal to its group would reach.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), KILL_GRACE)
    finally:
        # Even when cancelled again while waiting. After a clean exit this still reaches
        # what the CLI may have left in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()  # reaped: no zombie left


def request_body(args: argparse.Namespace) -> bytes:
    """The Chat Completions request an OpenAI client would send for these arguments."""
    messages = args.messages or [{"role": "user", "content": args.prompt}]
    return json.dumps({"model": args.model, "messages": messages, "stream": True,
                       "stream_options": {"include_usage": args.usage}}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="One streaming chat completion from the Claude Code CLI, as SSE lines.")
    parser.add_argument("prompt", nargs="?", help="the user message")
    parser.add_argument("--messages", type=json.loads,
                        help="the messages instead, as a JSON array (system ones too)")
    parser.add_argument("--model", default="sonnet", help="a CLI alias or a full model id")
    parser.add_argument("--claude", default="claude", help="the Claude Code CLI to run")
    parser.add_argument("--usage", action="store_true", help="end with a usage chunk")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="report the CLI's pid and exit status on stderr")
    args = parser.parse_args(argv)
    if (args.prompt is None) == (args.messages is None):
        parser.error("give either a prompt or --messages")
    options = ccproto.PlanOptions(executable=args.claude, cwd=os.getcwd())
    try:
        request = ccproto.structure_request(request_body(args))
        # ccproto reads no environment: the CLI inherits ours because we pass it in.
        inv = ccproto.plan_invocation(request, options, inherited_env=os.environ)
    except ccproto.ProtocolError as exc:
        print(json.dumps(exc.to_body()), file=sys.stderr)
        return 2
    # ccproto reads no clock and makes no ids: the caller does both.
    builder = ccproto.ChunkBuilder(
        completion_id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()),
        model=ccproto.resolve_model(request, options), include_usage=args.usage)

    def write(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()  # each event as it comes, not when a buffer fills

    try:
        done = asyncio.run(stream_completion(inv, builder, write, verbose=args.verbose))
    except (FileNotFoundError, PermissionError) as exc:  # the CLI could not be started
        print(f"{args.claude}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    except KeyboardInterrupt:
        return 130  # stream_completion stopped and reaped the CLI on its way out
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
