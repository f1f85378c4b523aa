"""Find the Claude Code CLI, then ask it for its version and whether it is logged in."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs
import trio

from ..settings import Settings

__all__ = ["PROJECT_ROOT", "CLIInfo", "CLILocation", "find_cli", "locate_cli", "probe_cli"]

logger = logging.getLogger(__name__)

# The directory holding the ccserver package: the repo root in a development checkout, where
# `npm ci` installs the pinned CLI under node_modules/.bin.
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # ccserver/proc/discovery.py
# `claude --version` answers in well under a second; 15 s allows for a cold, busy machine.
PROBE_TIMEOUT_SECONDS = 15.0
_VERSION = re.compile(r"\d+\.\d+\.\d+\S*")


@attrs.frozen(kw_only=True)
class CLILocation:
    path: str | None
    """The CLI to run, or None when there is none."""
    source: Literal["setting", "project", "path"] | None
    error: str | None = None
    """Why nothing usable was found."""


@attrs.frozen(kw_only=True)
class CLIInfo:
    path: str
    version: str | None
    """e.g. ``"2.1.197"``; None when ``--version`` failed."""
    logged_in: bool | None
    """From ``auth status``; None when that could not be read."""
    auth_method: str | None
    """As the CLI reports it: ``"api_key"``, ``"none"`` ..."""
    error: str | None
    """What went wrong while probing, if anything."""


def locate_cli(
    settings: Settings, *, environ: Mapping[str, str], project_root: Path = PROJECT_ROOT
) -> CLILocation:
    """Search: ``claude.command``, then ``<project_root>/node_modules/.bin/claude``, then PATH.

    A ``claude.command`` that is set but unusable ends the search: running some other CLI
    than the one configured would hide the mistake.
    """
    command = settings.claude.command
    if command:
        if os.sep not in command:  # a bare name, as a shell would look it up
            found = shutil.which(command, path=environ.get("PATH", ""))
        else:
            found = _expand(command, environ)
        if found is None or not _is_executable(found):
            error = f"claude.command {command!r} is not an executable file"
            return CLILocation(path=None, source=None, error=error)
        return CLILocation(path=found, source="setting")
    project_cli = project_root / "node_modules" / ".bin" / "claude"
    if _is_executable(str(project_cli)):
        return CLILocation(path=str(project_cli), source="project")
    found = shutil.which("claude", path=environ.get("PATH", ""))
    if found is not None:
        return CLILocation(path=found, source="path")
    error = f"claude CLI not found in {project_cli.parent} or on PATH; set claude.command"
    return CLILocation(path=None, source=None, error=error)


def find_cli(
    settings: Settings, *, environ: Mapping[str, str], project_root: Path = PROJECT_ROOT
) -> str | None:
    """The CLI's path, or None; ``locate_cli`` gives the order and, for None, the reason."""
    location = locate_cli(settings, environ=environ, project_root=project_root)
    if location.error is not None:
        logger.info("%s", location.error)  # the caller decides how loudly to report it
    else:
        logger.debug("claude CLI from %s: %s", location.source, location.path)
    return location.path


async def probe_cli(path: str, env: Mapping[str, str]) -> CLIInfo:
    """Run ``<path> --version``, then ``<path> auth status``; never raises (but is cancellable).

    Args:
        path: the CLI, e.g. from ``find_cli``.
        env: the environment the CLI will run with; its login state depends on it.
    """
    info = CLIInfo(path=path, version=None, logged_in=None, auth_method=None, error=None)
    try:
        code, out, err = await _run([path, "--version"], env)
        match = _VERSION.search(out)
        if code != 0 or match is None:
            raise _ProbeError(f"`claude --version` exited with {code}: {(out + err)[-300:]!r}")
        info = attrs.evolve(info, version=match.group())
        # `auth status` prints its JSON and exits 1 when logged out, so the JSON decides.
        code, out, err = await _run([path, "auth", "status"], env)
        try:
            status = json.loads(out)
        except ValueError:
            status = None
        if not isinstance(status, dict):
            raise _ProbeError(f"`claude auth status` exited with {code}: {(out + err)[-300:]!r}")
    except _ProbeError as exc:
        return attrs.evolve(info, error=str(exc))
    logged_in, method = status.get("loggedIn"), status.get("authMethod")
    return attrs.evolve(
        info,
        logged_in=logged_in if isinstance(logged_in, bool) else None,
        auth_method=method if isinstance(method, str) else None,
    )


class _ProbeError(Exception):
    pass


async def _run(argv: list[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    try:
        # On timeout trio kills the child and reaps it before fail_after raises.
        with trio.fail_after(PROBE_TIMEOUT_SECONDS):
            done = await trio.run_process(
                argv,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    except trio.TooSlowError:
        what = " ".join(["claude", *argv[1:]])
        raise _ProbeError(f"`{what}` did not finish in {PROBE_TIMEOUT_SECONDS:g} s") from None
    except OSError as exc:
        raise _ProbeError(f"cannot run {argv[0]}: {exc}") from None
    out, err = (bytes(b).decode(errors="replace") for b in (done.stdout, done.stderr))
    return done.returncode, out, err


def _expand(path: str, environ: Mapping[str, str]) -> str:
    if path == "~" or path.startswith("~/"):
        path = environ.get("HOME", str(Path.home())) + path[1:]
    return os.path.abspath(path)


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)
