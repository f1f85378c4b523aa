"""Start-up checks for the file-access and MCP settings, and the plan options built from
the settings.

`claude_options` runs once in `Gateway.start`: a setting that cannot work stops start-up
with a message naming it, instead of every request failing later inside the CLI. Once
the CLI is found, `plan_options` gives ccproto's `PlanOptions`: how every run is planned.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from ccproto import ImageLimits, PlanOptions

from . import Settings
from .mcp import McpSetup, load_mcp

__all__ = ["ClaudeOptions", "FileAccessError", "access_dirs", "claude_options", "cold_starts",
           "plan_options"]


class FileAccessError(Exception):
    """A file_access setting names something unusable."""


@attrs.frozen(kw_only=True)
class ClaudeOptions:
    #: file_access.additional_dirs, resolved (absolute, symlinks followed).
    add_dirs: tuple[str, ...]
    mcp: McpSetup
    #: --setting-sources: "user" keeps the workspace's CLAUDE.md and settings out.
    setting_sources: str


def access_dirs(settings: Settings) -> tuple[Path, ...]:
    """file_access.additional_dirs resolved, so a symlinked dir is compared by its target."""
    return tuple(
        Path(os.path.expanduser(d)).resolve() for d in settings.file_access.additional_dirs
    )


def claude_options(settings: Settings, environ: Mapping[str, str]) -> ClaudeOptions:
    """Check the settings; raises FileAccessError or McpConfigError with a clear message."""
    dirs = access_dirs(settings)
    for given, resolved in zip(settings.file_access.additional_dirs, dirs, strict=True):
        if not resolved.is_dir():
            raise FileAccessError(
                f"file_access.additional_dirs: {given!r} is not a directory ({resolved})"
            )
    # The CLI runs with claude.extra_env on top of the server's environment.
    cli_environ = {**environ, **settings.claude.extra_env}
    return ClaudeOptions(
        add_dirs=tuple(str(d) for d in dirs),
        mcp=load_mcp(settings, cli_environ),
        # "" leaves the CLI's default: user, project and local settings, CLAUDE.md included.
        setting_sources="" if settings.file_access.workspace_context else "user",
    )


def plan_options(settings: Settings, extra: ClaudeOptions, *, executable: str,
                 workspace: Path) -> PlanOptions:
    """How every CLI run is planned: the CLI found at ``executable``, run in ``workspace``."""
    c = settings.claude
    return PlanOptions(
        executable=executable,
        cwd=str(workspace),
        default_model=c.default_model,
        system_prompt_mode=c.system_prompt_mode,
        tools=c.tools,
        allowed_tools=(*c.allowed_tools, *extra.mcp.allowed_tools),
        permission_mode=c.permission_mode,
        max_turns=c.max_turns,
        max_retries=c.max_retries,
        extra_env=dict(c.extra_env),
        model_map=dict(c.model_map),
        models=tuple(settings.server.models),
        fallback_model=c.fallback_model,
        disallowed_tools=tuple(c.disallowed_tools),
        add_dirs=extra.add_dirs,
        skip_permissions=settings.file_access.skip_permissions,
        setting_sources=extra.setting_sources,
        mcp_configs=extra.mcp.config_files,
        mcp_debug=settings.mcp.debug,
        images=ImageLimits(max_bytes=settings.images.max_bytes,
                           max_count=settings.images.max_per_request),
        tools_with_client_tools=settings.client_tools.claude_tools,
        system_prompt_mode_with_client_tools=settings.client_tools.system_prompt_mode,
        profile=c.profile,
    )


def cold_starts(settings: Settings, cores: int | None = None) -> int:
    """How many CLI processes may start at once: ``claude.max_cold_starts``, or for 0
    two per CPU core this process may run on (``cores``, else its affinity mask).

    A start-up is about a CPU-second of work until the CLI's first line, but it also
    waits on its disk and pipes: with one per core the cores sat half idle (a burst of 32
    on 2 cores: 0.59x and 0.83x the all-at-once throughput in two runs), two per core
    kept them busy (0.87x, 1.27x) while the first ones still start early. More only
    splits the cores between them, so every start and first token take longer.
    """
    if settings.claude.max_cold_starts:
        return settings.claude.max_cold_starts
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    return max(1, 2 * cores)
