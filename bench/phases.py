"""Where a new conversation's first token goes: a per-phase trace, one request at a time.

Runs bench/first_token.py's pairs (gateway with a warm pool vs the same warm CLI fed on
its stdin) with the gateway served by this module: with ``CCBENCH_TRACE`` set,
``python -m bench.phases`` wraps the functions a chat completion passes through with
``time.perf_counter()`` marks (entry ``<``, exit ``>``), serves like ``python -m ccserver``
and appends each request's marks to that file. Production code has no timing in it:
the wrapping is done here, by name, and only in this process.

``perf_counter`` is CLOCK_MONOTONIC, one clock for every process on the machine, so the
gateway's marks line up with the client's (request sent, first content chunk) and, by
an offset to the wall clock, with the fake API's log (the CLI's upstream request).

Usage: .venv/bin/python -m bench.phases [pairs]
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.first_token import PROMPT, WarmCLI
from bench.harness import Report, arg, median, settle, stack, stream_chat

__all__ = ["main", "run"]

TRACE_ENV = "CCBENCH_TRACE"
MARKS: list[tuple[str, float]] = []


def _mark(label: str) -> None:
    MARKS.append((label, time.perf_counter()))


def _wrap(owner: Any, name: str, label: str = "") -> None:
    """Mark entry and exit of ``owner.name`` (a function, coroutine function or async
    context manager function); an async context manager is marked when entered too."""
    fn = getattr(owner, name)
    label = label or name
    inner = getattr(fn, "__wrapped__", None)
    wrapper: Callable[..., Any]
    if inner is not None and inspect.isasyncgenfunction(inner):
        @contextlib.asynccontextmanager
        async def acm(*args: Any, **kwargs: Any) -> Any:
            _mark(f"{label} <")
            async with fn(*args, **kwargs) as value:
                _mark(f"{label} entered")
                yield value
        wrapper = acm
    elif inspect.iscoroutinefunction(fn):
        async def coro(*args: Any, **kwargs: Any) -> Any:
            _mark(f"{label} <")
            try:
                return await fn(*args, **kwargs)
            finally:
                _mark(f"{label} >")
        wrapper = coro
    else:
        def sync(*args: Any, **kwargs: Any) -> Any:
            _mark(f"{label} <")
            try:
                return fn(*args, **kwargs)
            finally:
                _mark(f"{label} >")
        wrapper = sync
    setattr(owner, name, functools.wraps(fn)(wrapper))


def _install(trace: Path) -> None:
    import trio

    import ccproto
    from ccserver import app
    from ccserver.conversations import records, registry, sessions, sqlite
    from ccserver.core import attempts, run
    from ccserver.http import chat
    from ccserver.pool import admission, lease, pool
    from ccserver.proc import cli

    handler = app.ROUTES["/chat/completions"]["POST"]

    async def traced(gw: Any, scope: Any, receive: Any, send: Any, headers: Any) -> int:
        MARKS.clear()
        _mark("request arrived")
        first_body = [True]

        async def traced_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                _mark("response start sent")
            elif first_body[0] and b'"content"' in message.get("body", b""):
                first_body[0] = False
                _mark("first content sent")
            await send(message)

        try:
            return int(await handler(gw, scope, receive, traced_send, headers))
        finally:
            with trace.open("a") as f:
                f.write(json.dumps(MARKS) + "\n")

    app.ROUTES["/chat/completions"]["POST"] = traced
    for owner, name, label in (
        (chat, "read_body", ""), (chat, "decode", ""), (chat, "_cache_key", ""),
        (run, "resolve_images", ""), (run, "planner", ""), (run, "plan_invocation", ""),
        (run, "run_attempts", ""), (pool.Pool, "lease", "pool.lease"),
        (pool.Pool, "want", "pool.want"), (lease.Lease, "take_warm", ""),
        (lease.Lease, "take_bound", ""), (lease.Lease, "wait_to_start", ""),
        (lease.Lease, "make_room", ""), (admission.Admission, "slot", "admission.slot"),
        (registry.Conversations, "claim_turn", ""), (registry.KeyedLocks, "acquire", "lock"),
        (records.Records, "create", "records.create"),
        (sessions.SessionFiles, "roll_back", ""),
        (sqlite.SQLiteStore, "put", "store.put"), (sqlite.SQLiteStore, "get", "store.get"),
        (cli.CLIProcess, "send", "stdin write"),
        (ccproto.CLIStream, "receive_data", "stdout bytes"),
    ):
        _wrap(owner, name, label)
    to_thread = trio.to_thread.run_sync

    async def traced_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
        label = f"thread {getattr(fn, '__qualname__', fn)}"
        _mark(f"{label} <")
        try:
            return await to_thread(fn, *args, **kwargs)
        finally:
            _mark(f"{label} >")

    trio.to_thread.run_sync = traced_thread  # type: ignore[assignment]
    sink_send = attempts._Sink.send

    async def traced_sink(self: Any, event: Any) -> None:
        _mark(f"event {type(event).__name__}")
        await sink_send(self, event)

    attempts._Sink.send = traced_sink  # type: ignore[method-assign]


def _serve() -> int:
    _install(Path(os.environ[TRACE_ENV]))
    from ccserver.__main__ import main as serve_main
    return serve_main(sys.argv[1:])


def _firsts(marks: Sequence[tuple[str, float]], zero: float) -> dict[str, float]:
    """Each label's first mark, in ms after ``zero``; labels that repeat get a count."""
    out: dict[str, float] = {}
    seen: dict[str, int] = {}
    for label, t in marks:
        label = label[:70]
        seen[label] = seen.get(label, 0) + 1
        key = label if seen[label] == 1 else f"{label} #{seen[label]}"
        out[key] = (t - zero) * 1000
    return out


def run(argv: Sequence[str] = ()) -> Report:
    pairs = arg(argv, 0, 6)
    rows: list[dict[str, float]] = []
    floors: list[dict[str, float]] = []
    wall = time.time() - time.perf_counter()  # perf_counter + wall = time.time()
    with stack() as st:
        trace = st.tmp / "trace.jsonl"
        with st.gateway("gw", module="bench.phases", extra_env={TRACE_ENV: str(trace)}) \
                as (_gw, client):
            floor = WarmCLI(st.direct(PROMPT, name="floor"))
            try:
                for i in range(pairs + 1):
                    settle(client)
                    seen = len(st.fake.messages_requests())
                    f = floor.turn()
                    f_up = st.fake.messages_requests()[seen]["time"] - wall
                    floor.close()
                    settle(client)
                    seen = len(st.fake.messages_requests())
                    g = stream_chat(client, PROMPT)
                    floor = WarmCLI(st.direct(PROMPT, name="floor"))  # with the refill
                    client.delete(f"/conversations/{g.conversation_id}")
                    up = st.fake.messages_requests()[seen]["time"] - wall
                    if i == 0:
                        continue
                    marks = json.loads(trace.read_text().splitlines()[-1])
                    row = _firsts(marks, g.start)
                    row["client: request sent"] = 0.0
                    row["fake: upstream request arrived"] = (up - g.start) * 1000
                    row["client: first content chunk"] = g.first * 1000
                    rows.append(row)
                    floors.append({"floor: upstream request arrived": (f_up - f.start) * 1000,
                                   "floor: first text_delta": f.first * 1000})
            finally:
                floor.close()
    labels = sorted({k for r in rows for k in r}, key=lambda k: median(
        [r[k] for r in rows if k in r]))
    report = Report(
        title="Phases of a new conversation's first token (gateway, warm pool)",
        command=f".venv/bin/python -m bench.phases {pairs}",
        headline=f"first token {median([r['client: first content chunk'] for r in rows]):.1f}"
                 f" ms, floor {median([f['floor: first text_delta'] for f in floors]):.1f} ms"
                 f" (medians of {pairs})",
        header=("mark", "ms after the request was sent (median)", "step", "in"),
    )
    prev = 0.0
    end = median([r["client: first content chunk"] for r in rows])
    for label in labels:
        at = median([r[label] for r in rows if label in r])
        if at > end:
            break  # after the first token: not on its path
        report.rows.append((label, f"{at:.2f}", f"{at - prev:+.2f}",
                            f"{sum(label in r for r in rows)}/{len(rows)}"))
        prev = at
    for label in floors[0] if floors else ():
        report.notes.append(f"{label}: {median([f[label] for f in floors]):.2f} ms after "
                            "its user line was written (median)")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    if os.environ.get(TRACE_ENV):
        sys.exit(_serve())
    main()
