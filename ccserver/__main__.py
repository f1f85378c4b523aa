"""``python -m ccserver`` / ``ccserver``: load settings, set up logging, serve until a signal."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import trio
from hypercorn.utils import LifespanFailureError

from .edge.auth import bind_problem, configured, is_loopback
from .errors import find_leaf
from .serve import serve
from .settings import Settings, SettingsError, load_settings

__all__ = ["main", "parse_args"]

EXIT_BAD_SETTINGS = 2  # argparse's own code for a bad command line
EXIT_START_FAILED = 3


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ccserver",
        description="An OpenAI-compatible gateway in front of the Claude Code CLI.",
        epilog="Every setting can also be set as CLAUDE_CODE__<SECTION>__<KEY> in the environment.",
    )
    parser.add_argument("--host", help="address to listen on (server.host)")
    parser.add_argument("--port", type=int, help="TCP port, 0 for any free one (server.port)")
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings file (default: ./config/local.toml)"
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=["debug", "info", "warning", "error"],
        help="server.log_level",
    )
    return parser.parse_args(argv)


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.server.log_level.upper())
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Hypercorn's "Running on ..." repeats our "listening on" line; keep its warnings and errors.
    logging.getLogger("hypercorn.error").setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {
        "server.host": args.host,
        "server.port": args.port,
        "server.log_level": args.log_level,
    }
    try:
        settings = load_settings(config_path=args.config, environ=os.environ, overrides=overrides)
    except SettingsError as exc:
        print(f"ccserver: bad settings: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    if (problem := bind_problem(settings)) is not None:
        print(f"ccserver: refusing to start: {problem}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    configure_logging(settings)
    if not configured(settings.auth) and not is_loopback(settings.server.host):
        logging.getLogger("ccserver").warning(
            "serving %s without API keys (auth.allow_unauthenticated)", settings.server.host)
    try:
        trio.run(serve, settings)
    except KeyboardInterrupt:
        return 130  # interrupted while starting, before serve's signal receiver was open
    except BaseException as exc:
        # trio's strict nurseries wrap it in (possibly nested) exception groups.
        failed = find_leaf(exc, LifespanFailureError)
        if failed is not None:
            # The app refused to start (a shared store that does not answer, a bad MCP
            # file): its own message, logged above with its cause, not a traceback.
            print(f"ccserver: start-up failed: {failed}", file=sys.stderr)
            return EXIT_START_FAILED
        error = find_leaf(exc, OSError)
        if error is None:
            raise
        # Nearly always the bind (port taken, address not ours): a message, not a traceback.
        address = f"{settings.server.host}:{settings.server.port}"
        print(f"ccserver: cannot serve on {address}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
