"""The settings, one frozen attrs class per section; each field carries its meaning.

A new section is a class here plus a field of `Settings`; the loader and the README's
table find it through `SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

__all__ = ["SECTIONS", "ClaudeSettings", "ServerSettings", "Settings"]

_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _check(ok: Callable[[Any], bool], reason: str) -> _Validator:
    def validate(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not ok(value):
            raise ValueError(f"{attribute.name}: {reason}, got {value!r}")

    return validate


_POSITIVE = _check(lambda v: v > 0, "must be > 0")  # `not v > 0` also rejects NaN
_NON_NEGATIVE = _check(lambda v: v >= 0, "must be >= 0")
_PORT = _check(lambda v: 0 <= v <= 65535, "must be in 0..65535")
_NON_EMPTY = _check(lambda v: bool(v.strip()), "must not be empty")
_ENV_NAMES = _check(lambda m: all(k and "=" not in k for k in m), "keys must be variable names")


def _setting(default: Any, meaning: str, *checks: _Validator, **kw: Any) -> Any:
    # The meaning lives on the field so the README's table is generated from the code.
    return attrs.field(default=default, validator=list(checks), metadata={"meaning": meaning}, **kw)


@attrs.frozen(kw_only=True)
class ServerSettings:
    host: str = _setting("127.0.0.1", "address to listen on", _NON_EMPTY)
    port: int = _setting(8080, "TCP port; 0 picks a free one", _PORT)
    data_dir: str = _setting("", '"" = $XDG_DATA_HOME/ccserver or ~/.local/share/ccserver')
    max_body_bytes: int = _setting(10485760, "request body limit; larger gets 413", _POSITIVE)
    graceful_timeout_seconds: float = _setting(30.0, "drain this long on SIGINT/SIGTERM", _POSITIVE)
    sse_keepalive_seconds: float = _setting(15.0, "SSE keep-alive after this silence", _POSITIVE)
    log_level: Literal["debug", "info", "warning", "error"] = _setting(
        "info", "debug, info, warning or error"
    )
    models: tuple[str, ...] = _setting((), "extra full model ids listed by /v1/models")


@attrs.frozen(kw_only=True)
class ClaudeSettings:
    command: str = _setting("", 'path to the CLI; "" = project node_modules/.bin, then PATH')
    workspace: str = _setting("", 'the CLI\'s working directory; "" = <data_dir>/workspace')
    default_model: str = _setting("sonnet", 'for a request model "" or "default"', _NON_EMPTY)
    system_prompt_mode: Literal["append", "replace"] = _setting(
        "append", "append: --append-system-prompt; replace: --system-prompt"
    )
    tools: str = _setting("default", '"default" = the CLI\'s own set, "" = none, or "Bash,Read"')
    allowed_tools: tuple[str, ...] = _setting((), "tools allowed without asking (--allowedTools)")
    permission_mode: Literal["default", "acceptEdits", "plan", "dontAsk", "auto"] = _setting(
        "default", "default, acceptEdits, plan, dontAsk or auto; never bypassPermissions"
    )
    max_turns: int = _setting(0, "0 = no limit, else --max-turns", _NON_NEGATIVE)
    max_retries: int = _setting(2, "CLAUDE_CODE_MAX_RETRIES for the CLI", _NON_NEGATIVE)
    max_concurrent_sessions: int = _setting(10, "live CLI processes", _POSITIVE)
    max_queued_requests: int = _setting(32, "waiting for a slot beyond this: 429", _POSITIVE)
    queue_timeout_seconds: float = _setting(30.0, "waited this long for a slot: 429", _POSITIVE)
    first_output_timeout_seconds: float = _setting(120.0, "until the CLI's first line", _POSITIVE)
    idle_timeout_seconds: float = _setting(300.0, "longest silence from the CLI", _POSITIVE)
    timeout_seconds: float = _setting(900.0, "total time per request", _POSITIVE)
    kill_grace_seconds: float = _setting(2.0, "from SIGTERM to SIGKILL", _POSITIVE)
    max_line_bytes: int = _setting(33554432, "largest stdout line from the CLI", _POSITIVE)
    stderr_tail_bytes: int = _setting(8192, "CLI stderr kept for error messages", _POSITIVE)
    # A dict is unhashable, so it stays out of the generated __hash__ (equality still uses it).
    extra_env: Mapping[str, str] = _setting(
        attrs.Factory(dict), "table added to the CLI's environment", _ENV_NAMES, hash=False
    )


@attrs.frozen(kw_only=True)
class Settings:
    server: ServerSettings = attrs.Factory(ServerSettings)
    claude: ClaudeSettings = attrs.Factory(ClaudeSettings)


# Section name -> class, in declaration order (the annotations are strings until resolved).
SECTIONS: dict[str, type[Any]] = {
    f.name: f.type for f in attrs.fields(attrs.resolve_types(Settings)) if f.type
}
