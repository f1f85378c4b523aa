"""Which model, tools and turn limit a request gets, within what the server allows.

The server's settings set the limits; a request's extension fields (``max_turns``,
``enabled_tools``, ``disabled_tools``) may only narrow them, never widen them. Model names
are checked here too, so an unknown model is a 400 before any CLI starts: the CLI itself
sends any string to the API unchecked (protocol reference §8.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .errors import InvalidRequestError
from .jsonbody import excerpt

__all__ = [
    "CLI_MODEL_ALIASES",
    "DEFAULT_TOOLS",
    "LEAN_SUFFIX",
    "PROFILES",
    "check_model",
    "narrowed_disallowed",
    "narrowed_max_turns",
    "narrowed_tools",
    "split_profile",
    "valid_models",
]

#: Model aliases the pinned CLI resolves itself (reference §8.2).
CLI_MODEL_ALIASES = (
    "sonnet", "opus", "haiku", "fable", "best", "opusplan", "sonnet[1m]", "opus[1m]",
)  # fmt: skip
#: The profiles a run may have: "full" is Claude Code as it is (its tools, its agent
#: prompt); "lean" is a plain chat model (no tools, only the client's system prompt).
PROFILES = ("full", "lean")
#: A model name ending in this asks for the lean profile with the name before it
#: (``sonnet-chat``, ``claude-opus-4-1-chat``): the one per-request switch every OpenAI
#: client can send, since they all let the user type a model name.
LEAN_SUFFIX = "-chat"
# Full ids are passed to the API as they are; new models need no gateway release.
_FULL_ID_PREFIX = "claude-"

#: The CLI's built-in tools when ``--tools`` is not given, as the init record of the pinned
#: CLI lists them (the API request calls ``Task`` ``Agent``; both names are accepted).
#: ``--tools`` can also switch on tools outside this set (``Glob``, ``Grep``), so a request
#: narrowing the default set is checked against it.
DEFAULT_TOOLS = frozenset({
    "Agent", "Task", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "EnterWorktree",
    "ExitWorktree", "NotebookEdit", "Read", "ReportFindings", "ScheduleWakeup", "SendMessage",
    "Skill", "TaskCreate", "TaskGet", "TaskList", "TaskOutput", "TaskStop", "TaskUpdate",
    "WebFetch", "WebSearch", "Workflow", "Write",
})  # fmt: skip
# With the default set, disallowing Bash makes the CLI add Glob and Grep in its place
# (reference §8.3); a request must not gain tools by disabling one.
_BASH_STAND_INS = ("Glob", "Grep")

# A tool name or rule: `Read`, `mcp__server__tool`, `Bash(rm *)`. These become argv values
# after a list-valued option, so one starting with "-" would be read as a flag.
_TOOL_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_.*-]*(\([^()\x00]*\))?")


def valid_models(model_map: Mapping[str, str], models: Iterable[str]) -> tuple[str, ...]:
    """Every model name a request may use (besides full ``claude-...`` ids), in order."""
    return tuple(dict.fromkeys([*CLI_MODEL_ALIASES, *model_map, *models]))


def split_profile(
    requested: str, *, model_map: Mapping[str, str], models: Iterable[str]
) -> tuple[str, str | None]:
    """A request's model name as ``(base name, "lean" or None)``.

    A name the server knows as it is (a map key or listed model that happens to end in
    ``-chat``) stays whole: the operator's names win over the suffix.
    """
    name = requested.strip()
    base = name.removesuffix(LEAN_SUFFIX)
    if base == name or not base or name in valid_models(model_map, models):
        return name, None
    return base, "lean"


def check_model(
    requested: str, *, default: str, model_map: Mapping[str, str], models: Iterable[str]
) -> str:
    """The ``--model`` value for a request's model name.

    "" and "default" mean the server's default; the model map then renames (so a client's
    ``gpt-4o`` can be ``sonnet``). The default is the operator's choice and not checked.
    A ``-chat`` alias (`split_profile`) is checked as its base name.

    Raises:
        InvalidRequestError: a name that is no alias, map key, listed model or full id.
    """
    models = tuple(models)
    name, profile = split_profile(requested, model_map=model_map, models=models)
    if name in ("", "default"):
        return model_map.get(default, default)
    if name in model_map:
        return model_map[name]
    names = valid_models(model_map, models)
    if name in names or name.startswith(_FULL_ID_PREFIX):
        return name
    base = f" ({excerpt(name)} is no model name)" if profile else ""
    raise InvalidRequestError(
        f"The model {excerpt(requested.strip())} does not exist{base}. Use one of: "
        f"{', '.join(names)}, or a full Claude model id ({_FULL_ID_PREFIX}...); any of them "
        f"with {LEAN_SUFFIX} picks the lean profile",
        param="model",
        code="model_not_found",
    )


def narrowed_max_turns(server: int, requested: int | None) -> int:
    """--max-turns (0 = no limit): the request may lower the server's limit, not raise it."""
    if requested is None:
        return server
    if requested < 1:
        raise InvalidRequestError("max_turns must be at least 1", param="max_turns")
    return requested if server == 0 else min(server, requested)


def _split(tools: str) -> list[str]:
    return [t.strip() for t in tools.split(",") if t.strip()]


def narrowed_tools(server: str, requested: tuple[str, ...] | None) -> str | None:
    """The --tools value, or None to leave the CLI's default set.

    ``server`` is the setting: "default", "" (none) or "A,B". A request's ``enabled_tools``
    must name tools the server offers.
    """
    if requested is None:
        return None if server == "default" else server
    offered = DEFAULT_TOOLS if server == "default" else frozenset(_split(server))
    extra = [t for t in requested if t not in offered]
    if extra:
        listing = ", ".join(sorted(offered)) or "none"
        raise InvalidRequestError(
            f"enabled_tools may only narrow the server's tools; not offered: "
            f"{', '.join(excerpt(t) for t in extra[:5])}{' ...' if len(extra) > 5 else ''}. "
            f"Offered: {listing}",
            param="enabled_tools",
        )
    return ",".join(dict.fromkeys(requested))


def narrowed_disallowed(
    server_tools: str, server: tuple[str, ...], requested: tuple[str, ...] | None
) -> tuple[str, ...]:
    """--disallowedTools: the server's list plus the request's (which can only take away)."""
    if not requested:
        return server
    for j, rule in enumerate(requested):
        if not _TOOL_RULE.fullmatch(rule):
            raise InvalidRequestError(
                f"disabled_tools[{j}] is not a tool name or rule such as Bash(rm *): "
                f"{excerpt(rule)}",
                param=f"disabled_tools[{j}]",
            )
    extra: tuple[str, ...] = ()
    if server_tools == "default" and "Bash" not in server:
        extra = _BASH_STAND_INS
    return tuple(dict.fromkeys([*server, *requested, *extra]))
