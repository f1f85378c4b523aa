"""MCP servers for the CLI: the configured file, checked once at start-up.

The CLI starts every MCP server it finds: its user config's, and a ``.mcp.json`` in the
working directory with no prompt in ``-p`` mode (protocol reference §8.6). The plan always
passes ``--strict-mcp-config``, so only the files named here load. ``mcp.strict = false``
adds the CLI's user config file (whose top-level ``mcpServers`` the CLI reads as an MCP
config), never a workspace's ``.mcp.json``. A missing file only shows up in the CLI as a
failed run, and a bad server as ``status: "failed"``; checking at start-up turns both into
a message naming the problem.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from . import Settings

__all__ = ["McpConfigError", "McpSetup", "load_mcp"]

# The CLI's own rule for `claude mcp add` names; tool names are mcp__<name>__<tool>.
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_URL_TYPES = {"sse": ("http://", "https://"), "http": ("http://", "https://"),
              "ws": ("ws://", "wss://")}  # fmt: skip


class McpConfigError(Exception):
    """The MCP configuration cannot be used; the message says which file and server."""


@attrs.frozen(kw_only=True)
class McpSetup:
    #: Files for --mcp-config, in order.
    config_files: tuple[str, ...] = ()
    #: Server names from the configured file (and the user config when not strict).
    servers: tuple[str, ...] = ()
    #: --allowedTools rules that let the servers' tools run without asking.
    allowed_tools: tuple[str, ...] = ()


def load_mcp(settings: Settings, environ: Mapping[str, str]) -> McpSetup:
    """Check the MCP settings and files; what the plan needs, or McpConfigError."""
    mcp = settings.mcp
    if not mcp.enabled:
        return McpSetup()
    if not mcp.config_file:
        raise McpConfigError("mcp.enabled is true but mcp.config_file is empty")
    path = Path(os.path.expanduser(mcp.config_file)).resolve()
    servers = _servers(path, required=True)
    for name, spec in servers.items():
        _check_server(path, name, spec, environ)
    files, names = [str(path)], list(servers)
    if not mcp.strict:
        user = _user_config(environ)
        # Checked lightly: these are the CLI's own, written by `claude mcp add`.
        if user is not None and (extra := _servers(user, required=False)):
            files.append(str(user))
            names += [n for n in extra if n not in servers]
    # The CLI puts the server name into tool names with other characters made "_".
    allowed = tuple(f"mcp__{re.sub(r'[^A-Za-z0-9_-]', '_', n)}" for n in names)
    return McpSetup(
        config_files=tuple(files),
        servers=tuple(names),
        allowed_tools=allowed if mcp.allow_tools else (),
    )


def _servers(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not required:
            return {}
        raise McpConfigError(f"mcp.config_file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise McpConfigError(f"MCP config {path} cannot be read as JSON: {exc}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if servers is None and not required:
        return {}
    if not isinstance(servers, dict):
        raise McpConfigError(f'MCP config {path} must be {{"mcpServers": {{name: server}}}}')
    return servers


def _check_server(path: Path, name: str, spec: object, environ: Mapping[str, str]) -> None:
    where = f"MCP config {path}, server {name!r}"
    if not _NAME.fullmatch(name):
        raise McpConfigError(f"{where}: names may hold only letters, digits, '-' and '_'")
    if not isinstance(spec, dict):
        raise McpConfigError(f"{where}: must be an object")
    kind = spec.get("type", "stdio")
    if kind == "stdio":
        command = spec.get("command")
        if not isinstance(command, str) or not command:
            raise McpConfigError(f'{where}: a stdio server needs a "command" string')
        if "/" not in command and shutil.which(command, path=environ.get("PATH")) is None:
            raise McpConfigError(f"{where}: command {command!r} is not on PATH")
        _check_strings(where, spec, "args", list)
        _check_strings(where, spec, "env", dict)
    elif kind in _URL_TYPES:
        url = spec.get("url")
        if not isinstance(url, str) or not url.startswith(_URL_TYPES[kind]):
            schemes = " or ".join(_URL_TYPES[kind])
            raise McpConfigError(f'{where}: a {kind} server needs a "url" starting {schemes}')
        _check_strings(where, spec, "headers", dict)
    else:
        raise McpConfigError(f"{where}: type must be stdio, sse, http or ws, not {kind!r}")


def _check_strings(where: str, spec: dict[str, Any], key: str, kind: type) -> None:
    value = spec.get(key, kind())
    values = value.values() if isinstance(value, dict) else value
    if not isinstance(value, kind) or not all(isinstance(v, str) for v in values):
        shape = "a list of strings" if kind is list else "an object of strings"
        raise McpConfigError(f'{where}: "{key}" must be {shape}')


def _user_config(environ: Mapping[str, str]) -> Path | None:
    """The CLI's user config file, where `claude mcp add --scope user` writes."""
    config_dir = environ.get("CLAUDE_CONFIG_DIR")
    if config_dir:
        return Path(config_dir) / ".claude.json"
    home = environ.get("HOME")
    return Path(home) / ".claude.json" if home else None
