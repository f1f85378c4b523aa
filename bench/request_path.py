"""Which ccserver modules one streamed chat completion passes through, measured.

Runs the app in-process on a replay stand-in CLI (tests' replay_cli.py, a recorded
transcript), with the warm pool off, and records every Python call into a ccserver module
(sys.setprofile) from the ASGI call to the last body byte. Prints the modules in the order
first entered, their count, and the module pairs where a call went from a lower line of
ccserver's dependency rule (`ccserver.LAYERS`) to a higher one: callbacks a lower layer
was handed (and coroutines it resumed), the only way control can climb.

    python -m bench.request_path
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import trio

import ccserver
from ccserver.app import App
from ccserver.settings.sections import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
REPLAY = next(p for p in (ROOT / "tests/support/replay_cli.py",
                          ROOT / "tests/ccserver/replay_cli.py") if p.exists())
TRANSCRIPT = ROOT / "tests/data/transcripts/text_stream.jsonl"


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def main() -> None:
    layers = getattr(ccserver, "LAYERS", ())
    rank = {p: i for i, line in enumerate(layers) for p in line}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        cli = home / "claude"
        cli.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPLAY}" "$@"\n')
        cli.chmod(0o755)
        sections: dict[str, dict[str, Any]] = {
            "server": {"data_dir": str(home / "data")},
            "claude": {"workspace": str(home / "ws"), "command": str(cli),
                       "extra_env": {"REPLAY_FILE": str(TRANSCRIPT)}},
            "conversation": {"store_path": str(home / "db.sqlite3")},
            "pool": {"size": 0},
        }
        settings = ccserver.settings.Settings(
            **{name: SECTIONS[name](**values) for name, values in sections.items()})
        calls: list[tuple[str, str]] = []
        trio.run(_run, App(settings), calls)
    seen: list[str] = []
    upward: list[str] = []
    for caller, callee in calls:
        if callee not in seen:
            seen.append(callee)
        a, b = rank.get(part(caller)), rank.get(part(callee))
        edge = f"{caller} -> {callee}"
        if a is not None and b is not None and b < a and edge not in upward:
            upward.append(edge)
    print(json.dumps({"modules": len(seen), "path": seen,
                      "upward_edges": upward if rank else None}, indent=1))


async def _run(app: App, calls: list[tuple[str, str]]) -> None:
    to_app, app_in = trio.open_memory_channel[dict[str, Any]](10)
    async with trio.open_nursery() as nursery:
        started = trio.Event()

        async def lifespan_send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        nursery.start_soon(app, {"type": "lifespan"}, app_in.receive, lifespan_send)
        await to_app.send({"type": "lifespan.startup"})
        await started.wait()
        body = json.dumps({"model": "sonnet", "stream": True,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        done = trio.Event()
        sent = [False]

        async def receive() -> dict[str, Any]:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/chat/completions",
                 "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "",
                 "headers": [(b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080)}

        def profile(frame: FrameType, event: str, arg: object) -> None:
            if event != "call":
                return
            callee = frame.f_globals.get("__name__", "")
            back = frame.f_back
            caller = back.f_globals.get("__name__", "") if back is not None else ""
            if callee.startswith("ccserver.") and "fakeapi" not in callee:
                calls.append((caller if caller.startswith("ccserver.") else "", callee))

        sys.setprofile(profile)
        try:
            await app(scope, receive, send)
        finally:
            sys.setprofile(None)
        await to_app.send({"type": "lifespan.shutdown"})
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    main()
