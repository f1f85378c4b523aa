"""``python -m ccserver.fakeapi --host 127.0.0.1 --port 0 [--log FILE]``.

Prints exactly one line, ``listening on http://HOST:PORT``, once the socket is bound, so a parent
process can start it with ``--port 0`` and read the port from the first stdout line.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import trio

from .server import serve

__all__ = ["main"]


async def _run(host: str, port: int, log_path: Path | None) -> None:
    async with trio.open_nursery() as nursery:
        bound: int = await nursery.start(partial(serve, host, port, log_path=log_path))
        print(f"listening on http://{host}:{bound}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ccserver.fakeapi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--log", type=Path, help="append every request to FILE as JSON lines")
    args = parser.parse_args(argv)
    try:
        trio.run(_run, args.host, args.port, args.log)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
