"""The settings, one frozen attrs class per section; each field carries its meaning.

A new section is a class here (or in edge.py: who may connect, the WebSockets, the cache)
plus a field of `Settings`; the loader and the README's table find it through `SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .conversation import ConversationSettings
from .edge import AuthSettings, CacheSettings, CorsSettings, WebSocketSettings
from .fields import ENV_NAMES, NON_EMPTY, NON_NEGATIVE, PORT, POSITIVE, setting

__all__ = [
    "SECTIONS",
    "AuthSettings",
    "CacheSettings",
    "ClaudeSettings",
    "ClientToolsSettings",
    "ConversationSettings",
    "CorsSettings",
    "FileAccessSettings",
    "ImagesSettings",
    "McpSettings",
    "PoolSettings",
    "ServerSettings",
    "Settings",
    "WebSocketSettings",
]

@attrs.frozen(kw_only=True)
class ServerSettings:
    host: str = setting("127.0.0.1", "address to listen on", NON_EMPTY)
    port: int = setting(8080, "TCP port; 0 picks a free one", PORT)
    data_dir: str = setting("", '"" = $XDG_DATA_HOME/ccserver or ~/.local/share/ccserver')
    max_body_bytes: int = setting(10485760, "request body limit; larger gets 413", POSITIVE)
    body_timeout_seconds: float = setting(
        30.0, "a request body not read whole in this long gets 408 and a closed connection",
        POSITIVE,
    )
    graceful_timeout_seconds: float = setting(30.0, "drain this long on SIGINT/SIGTERM", POSITIVE)
    sse_keepalive_seconds: float = setting(
        15.0, "SSE keep-alive after this silence, once a stream's status is sent", POSITIVE
    )
    status_hold_seconds: float = setting(
        45.0, "a stream's status waits this long for its first content, then 200 (README)",
        POSITIVE,
    )
    keep_alive_seconds: float = setting(
        10.0, "close a connection idle (or silent from its start) this long", POSITIVE
    )
    log_level: Literal["debug", "info", "warning", "error"] = setting(
        "info", "debug, info, warning or error"
    )
    models: tuple[str, ...] = setting((), "extra full model ids listed by /v1/models")


@attrs.frozen(kw_only=True)
class ClaudeSettings:
    command: str = setting("", 'path to the CLI; "" = project node_modules/.bin, then PATH')
    workspace: str = setting("", 'the CLI\'s working directory; "" = <data_dir>/workspace')
    default_model: str = setting("sonnet", 'for a request model "" or "default"', NON_EMPTY)
    system_prompt_mode: Literal["append", "replace"] = setting(
        "append", "append: --append-system-prompt; replace: --system-prompt"
    )
    tools: str = setting("default", '"default" = the CLI\'s own set, "" = none, or "Bash,Read"')
    profile: Literal["full", "lean"] = setting(
        "full", "full: Claude Code's tools and prompt; lean: a plain chat model (no tools, the "
        "client's system prompt only) for requests that pick none (README: Profiles)"
    )
    allowed_tools: tuple[str, ...] = setting((), "tools allowed without asking (--allowedTools)")
    disallowed_tools: tuple[str, ...] = setting((), "tools or rules denied (--disallowedTools)")
    permission_mode: Literal["default", "acceptEdits", "plan", "dontAsk", "auto"] = setting(
        "default", "default, acceptEdits, plan, dontAsk or auto; never bypassPermissions"
    )
    max_turns: int = setting(0, "0 = no limit, else --max-turns", NON_NEGATIVE)
    max_retries: int = setting(2, "CLAUDE_CODE_MAX_RETRIES for the CLI", NON_NEGATIVE)
    max_concurrent_sessions: int = setting(10, "live CLI processes", POSITIVE)
    max_queued_requests: int = setting(32, "waiting for a slot beyond this: 429", POSITIVE)
    queue_timeout_seconds: float = setting(30.0, "waited this long for a slot: 429", POSITIVE)
    max_cold_starts: int = setting(
        0, "new CLI processes starting at once, the rest wait in line; 0 = 2 per CPU core",
        NON_NEGATIVE,
    )
    first_output_timeout_seconds: float = setting(120.0, "until the CLI's first line", POSITIVE)
    idle_timeout_seconds: float = setting(300.0, "longest silence from the CLI", POSITIVE)
    timeout_seconds: float = setting(900.0, "total time per request", POSITIVE)
    kill_grace_seconds: float = setting(2.0, "from SIGTERM to SIGKILL", POSITIVE)
    max_line_bytes: int = setting(33554432, "largest stdout line from the CLI", POSITIVE)
    stderr_tail_bytes: int = setting(8192, "CLI stderr kept for error messages", POSITIVE)
    # A dict is unhashable, so it stays out of the generated __hash__ (equality still uses it).
    extra_env: Mapping[str, str] = setting(
        attrs.Factory(dict), "table added to the CLI's environment", ENV_NAMES, hash=False
    )
    fallback_model: str = setting("", '"" = none, else --fallback-model (after repeated 529s)')
    model_map: Mapping[str, str] = setting(
        attrs.Factory(dict), "request model name -> CLI model, e.g. {gpt-4o = \"sonnet\"}",
        hash=False,
    )
    include_reasoning: bool = setting(
        False, "stream thinking as delta.reasoning_content (message.reasoning_content)"
    )
    start_retries: int = setting(
        2, "runs started again when the CLI fails before any output (start failure, crash)",
        NON_NEGATIVE,
    )
    retry_backoff_seconds: float = setting(
        0.5, "wait before the first such retry; doubles for each next one", NON_NEGATIVE
    )


@attrs.frozen(kw_only=True)
class PoolSettings:
    size: int = setting(2, "warm CLI processes kept ready for new conversations", NON_NEGATIVE)
    idle_seconds: float = setting(
        300.0, "a conversation's CLI stays alive this long after a turn; 0 = exit at once",
        NON_NEGATIVE,
    )


@attrs.frozen(kw_only=True)
class ClientToolsSettings:
    hold_seconds: float = setting(
        900.0, "a client tool call waits this long for its result; then its CLI is stopped "
        "(the conversation goes on from its session)", POSITIVE,
    )
    claude_tools: str = setting(
        "", 'Claude Code\'s own tools while a request offers client tools: "" = none (a '
        'function-calling model), "default" = all, or "Read,Grep"',
    )
    system_prompt_mode: Literal["append", "replace"] = setting(
        "replace", "how the client's system prompt is given while it offers tools",
    )


@attrs.frozen(kw_only=True)
class ImagesSettings:
    max_bytes: int = setting(5242880, "largest image (decoded); larger gets 400", POSITIVE)
    max_per_request: int = setting(20, "images in one request; more gets 400", NON_NEGATIVE)
    fetch_urls: bool = setting(True, "fetch http(s) image URLs; false = such URLs get 400")
    fetch_timeout_seconds: float = setting(
        10.0, "to fetch one image URL, redirects included", POSITIVE
    )
    max_redirects: int = setting(3, "redirects followed per image URL", NON_NEGATIVE)
    allow_private_addresses: bool = setting(
        False, "let image URLs reach loopback, private, link-local and metadata addresses"
    )


@attrs.frozen(kw_only=True)
class FileAccessSettings:
    additional_dirs: tuple[str, ...] = setting(
        (), "--add-dir for each; local image paths must lie inside one"
    )
    skip_permissions: bool = setting(
        False, "--dangerously-skip-permissions (and IS_SANDBOX=1) instead of permission_mode"
    )
    workspace_context: bool = setting(
        False, "load CLAUDE.md and .claude/ settings from the workspace; false = user settings only"
    )


@attrs.frozen(kw_only=True)
class McpSettings:
    enabled: bool = setting(False, "start the MCP servers in mcp.config_file")
    config_file: str = setting("", '{"mcpServers": {...}} JSON, checked at start-up')
    strict: bool = setting(
        True, "false also adds the CLI user config's servers; never a workspace .mcp.json"
    )
    allow_tools: bool = setting(
        True, "the configured servers' tools run without asking (--allowedTools mcp__SERVER)"
    )
    debug: bool = setting(False, "--debug=mcp; the CLI logs to its config dir's debug/")


@attrs.frozen(kw_only=True)
class Settings:
    server: ServerSettings = attrs.Factory(ServerSettings)
    claude: ClaudeSettings = attrs.Factory(ClaudeSettings)
    conversation: ConversationSettings = attrs.Factory(ConversationSettings)
    pool: PoolSettings = attrs.Factory(PoolSettings)
    client_tools: ClientToolsSettings = attrs.Factory(ClientToolsSettings)
    images: ImagesSettings = attrs.Factory(ImagesSettings)
    file_access: FileAccessSettings = attrs.Factory(FileAccessSettings)
    mcp: McpSettings = attrs.Factory(McpSettings)
    auth: AuthSettings = attrs.Factory(AuthSettings)
    cors: CorsSettings = attrs.Factory(CorsSettings)
    cache: CacheSettings = attrs.Factory(CacheSettings)
    websocket: WebSocketSettings = attrs.Factory(WebSocketSettings)


# Section name -> class, in declaration order (the annotations are strings until resolved).
SECTIONS: dict[str, type[Any]] = {
    f.name: f.type for f in attrs.fields(attrs.resolve_types(Settings)) if f.type
}
