"""The plan: an OpenAI request plus the server's options become one CLI invocation.

Nothing here starts a process; `Invocation` is a value the shell hands to its runner.
The argv follows protocol reference §1: stream-json in and out with partial messages, the
prompt on stdin (never in argv: list-valued options swallow positionals and argv strings
are capped at 128 KiB), and only options the server's settings chose.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import InvalidRequestError
from .images import ImageLimits
from .openai_types import ChatCompletionRequest
from .policy import (
    LEAN_SUFFIX,
    PROFILES,
    check_model,
    narrowed_disallowed,
    narrowed_max_turns,
    narrowed_tools,
    split_profile,
    valid_models,
)
from .prompt import build_prompt, user_line
from .tools import JsonSchemaFormat, ToolSet, client_tools, output_format

__all__ = [
    "Invocation",
    "PlanOptions",
    "ProcessKey",
    "SessionPlan",
    "model_names",
    "plan_invocation",
    "request_tools",
    "resolve_model",
    "resolve_profile",
    "resuming_answered_calls",
]

# `reasoning_effort` values clients send -> the CLI's --effort levels.
_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high",
           "xhigh": "xhigh", "max": "max"}


#: ``(argv, sorted env items)`` of a process, the session flags left out; hashable.
ProcessKey = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


def _whole_invocation(inv: Invocation) -> ProcessKey:
    # Built by hand, not planned: no flag is known to be the session's, so all of it counts.
    return inv.argv, tuple(sorted(inv.env.items()))


@attrs.frozen(kw_only=True)
class Invocation:
    """Everything needed to start one Claude Code CLI run.

    ``stdin`` is written to the CLI's standard input, which must be a pipe: the CLI ignores
    stream-json input read from a regular file under 64 KiB (protocol reference §7.1).
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    stdin: bytes
    cwd: str
    #: The stdin for when the turn's tool results answer a live turn's held calls (they
    #: are quoted in ``stdin`` otherwise), if the turn has a user message after them.
    stdin_after_results: bytes | None = None
    #: The client's function tools the in-band MCP server offers (None: no server).
    client_tools: ToolSet | None = None
    #: The JSON object the turn must produce (``--json-schema``), if any.
    output: JsonSchemaFormat | None = None
    #: What makes two processes interchangeable: the argv and env without ``--session-id``
    #: or ``--resume`` and their id. A persistent CLI started for one session can serve
    #: another whose plan has the same key (the server's warm pool relies on it).
    process_key: ProcessKey = attrs.field(
        default=attrs.Factory(_whole_invocation, takes_self=True)
    )


@attrs.frozen(kw_only=True)
class PlanOptions:
    """The server's choices for every run, built by the server from its settings."""

    executable: str
    cwd: str
    default_model: str = "sonnet"
    system_prompt_mode: str = "append"  # "append" | "replace"
    tools: str = "default"  # "default" = the CLI's own set, "" = none, else "A,B"
    allowed_tools: tuple[str, ...] = ()
    permission_mode: str = "default"
    max_turns: int = 0
    max_retries: int = 2
    extra_env: Mapping[str, str] = attrs.field(factory=dict)
    #: Request model name -> CLI model; keys are valid model names too.
    model_map: Mapping[str, str] = attrs.field(factory=dict)
    #: Extra model names a request may use as they are.
    models: tuple[str, ...] = ()
    fallback_model: str = ""
    disallowed_tools: tuple[str, ...] = ()
    #: Absolute directories the CLI's tools may use besides the cwd (--add-dir).
    add_dirs: tuple[str, ...] = ()
    #: --dangerously-skip-permissions instead of --permission-mode.
    skip_permissions: bool = False
    #: "" = the CLI's default (user, project, local): project means the workspace's
    #: CLAUDE.md and .claude/settings.json are read (reference §8.1).
    setting_sources: str = "user"
    #: MCP config files (--mcp-config); --strict-mcp-config is always given.
    mcp_configs: tuple[str, ...] = ()
    mcp_debug: bool = False
    images: ImageLimits = attrs.field(factory=ImageLimits)
    #: ``--tools`` while the client's own tools are offered: "" (the default) turns Claude
    #: Code's tools off, so the gateway acts as a function-calling model; "default" keeps
    #: them all, or "A,B".
    tools_with_client_tools: str = ""
    #: How a client's system prompt is given when it offers tools ("replace" by default:
    #: Claude Code's own prompt describes tools that are off).
    system_prompt_mode_with_client_tools: str = "replace"
    #: "full" (Claude Code as it is) or "lean" (a plain chat model: no Claude Code tools,
    #: the client's system prompt instead of Claude Code's) for requests that pick none.
    profile: str = "full"


@attrs.frozen(kw_only=True)
class SessionPlan:
    """The CLI session a run belongs to; the server's conversation store decides it.

    ``resume`` False starts the session under the given id; True resumes it, so the CLI
    loads the earlier turns itself and the prompt carries only the new one. Sessions are
    kept per working directory (reference §5.2), so ``cwd`` is the session's own.
    """

    session_id: str
    resume: bool
    cwd: str
    #: Used when the request has no system message of its own.
    system_prompt: str | None = None


def resolve_model(request: ChatCompletionRequest, options: PlanOptions) -> str:
    """The CLI model for the request (raises InvalidRequestError for an unknown name)."""
    return check_model(request.model, default=options.default_model,
                       model_map=options.model_map, models=options.models)


def resolve_profile(request: ChatCompletionRequest, options: PlanOptions) -> str:
    """"full" or "lean" for the request: its ``profile`` field (or header), else a
    ``-chat`` model alias, else the server's setting. The explicit field wins over the
    alias: it is the more deliberate choice, and a client whose model list offers only
    ``-chat`` names can still ask for Claude Code's tools.

    Raises:
        InvalidRequestError: a ``profile`` that is neither.
    """
    if request.profile is not None:
        if request.profile not in PROFILES:
            raise InvalidRequestError(
                f"profile must be one of {', '.join(PROFILES)}", param="profile")
        return request.profile
    _, alias = split_profile(request.model, model_map=options.model_map,
                             models=options.models)
    return alias or options.profile


def model_names(options: PlanOptions) -> tuple[str, ...]:
    """The model names requests may use (plus any full ``claude-...`` id, and any name
    with ``-chat``), for /v1/models: the ``-chat`` aliases listed are those of the
    default model and the three model families, so the list stays short."""
    names = valid_models(options.model_map, (options.default_model, *options.models))
    lean = [f"{n}{LEAN_SUFFIX}" for n in (options.default_model, "sonnet", "opus", "haiku")]
    return tuple(dict.fromkeys([*names, *lean]))


# Said to the model when no system prompt came with client tools: Claude Code's own
# describes tools that are off.
_PLAIN_SYSTEM = "You are a helpful assistant. Use the provided tools when they help."
# The same for a lean turn without tools: Claude Code's prompt is replaced, never sent.
_LEAN_SYSTEM = "You are a helpful assistant."
# What a lean run turns off besides tools and prompt (measured with the pinned CLI against
# the fake upstream; README "Profiles"). Experimental betas: the body's context_management
# (clear_thinking, keep all: a no-op without tools) and most of the anthropic-beta header.
# CLAUDE.md files: Claude Code's context, not the client's prompt. The operator's
# claude.extra_env still wins over both.
_LEAN_ENV = {"CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1", "CLAUDE_CODE_DISABLE_CLAUDE_MDS": "1"}
# The CLI never sends tool_choice (client-tools reference §8), so "required" and a named
# function are asked for in the turn's own text: per turn, and no new process.
_REQUIRED = "(Respond by calling one of the provided tools.)"
_NAMED = "(Respond by calling the tool {name}.)"


def request_tools(request: ChatCompletionRequest) -> ToolSet | None:
    """The client tools ``request`` offers this turn (ccproto.tools.client_tools)."""
    return client_tools(request.tools, request.tool_choice,
                        parallel=request.parallel_tool_calls, functions=request.functions,
                        function_call=request.function_call)


def _check_supported(request: ChatCompletionRequest) -> None:
    if request.n not in (None, 1):
        raise InvalidRequestError("Only n=1 is supported", param="n")
    if request.reasoning_effort is not None and request.reasoning_effort not in _EFFORT:
        raise InvalidRequestError(
            f"reasoning_effort must be one of {', '.join(_EFFORT)}", param="reasoning_effort"
        )


def plan_invocation(
    request: ChatCompletionRequest,
    options: PlanOptions,
    *,
    inherited_env: Mapping[str, str],
    session: SessionPlan | None = None,
) -> Invocation:
    """Build the invocation for one request (pure: same inputs, same plan).

    Without ``session`` the run is stateless and leaves no session files behind.

    Raises:
        InvalidRequestError: the request asks for something the CLI cannot do.
    """
    _check_supported(request)
    tools = request_tools(request)
    output = output_format(request.response_format)
    resume = session is not None and session.resume
    prompt = build_prompt(request, inline_history=not resume, image_limits=options.images)
    system = prompt.system if prompt.system is not None else session and session.system_prompt
    lean = resolve_profile(request, options) == "lean"
    nudge: tuple[dict[str, Any], ...] = ()
    if lean and tools is None:
        system = system or _LEAN_SYSTEM
    if tools is not None:
        system = system or _PLAIN_SYSTEM
        if tools.choice != "auto":
            text = _REQUIRED if tools.choice == "required" else _NAMED.format(name=tools.choice)
            nudge = ({"type": "text", "text": text},)
    argv = [
        options.executable, "-p",
        "--input-format", "stream-json",
        "--output-format", "stream-json",
        "--verbose", "--include-partial-messages",
        "--model", resolve_model(request, options),
        # Only MCP servers the gateway configures, never a workspace's .mcp.json (§8.6).
        "--strict-mcp-config",
    ]
    env = dict(inherited_env)
    if options.skip_permissions:
        # Opted into by the operator. As root the CLI refuses the flag unless IS_SANDBOX=1
        # (reference §1.2): turning permissions off declares the machine a sandbox.
        argv.append("--dangerously-skip-permissions")
        env["IS_SANDBOX"] = "1"
    else:
        argv += ["--permission-mode", options.permission_mode]
    if session is None:
        # Stateless: nothing to resume later, so nothing is written to disk.
        argv.append("--no-session-persistence")
    # The session flags belong here, but go in last: all the rest is the process key.
    session_at = len(argv)
    if system:
        mode = ("replace" if lean else options.system_prompt_mode if tools is None
                else options.system_prompt_mode_with_client_tools)
        argv += ["--system-prompt" if mode == "replace" else "--append-system-prompt", system]
    argv += _tool_and_extra_flags(request, options, tools, lean=lean)
    if output is not None:
        argv += ["--json-schema", output.flag()]
    if tools is not None:
        _client_tool_env(env, tools)
    if lean:
        env.update(_LEAN_ENV)
    # Without this the CLI phones home and may send extra title requests (reference §10).
    env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
    # The CLI's default is 10 retries over ~3 minutes; the gateway answers sooner.
    env["CLAUDE_CODE_MAX_RETRIES"] = str(options.max_retries)
    env.update(options.extra_env)
    process_key = (tuple(argv), tuple(sorted(env.items())))
    if session is not None:
        argv[session_at:session_at] = [
            "--resume" if session.resume else "--session-id", session.session_id
        ]
    return Invocation(
        argv=tuple(argv),
        env=env,
        stdin=user_line((*prompt.content, *nudge)),
        stdin_after_results=None if prompt.content_after_results is None
        else user_line((*prompt.content_after_results, *nudge)),
        cwd=options.cwd if session is None else session.cwd,
        client_tools=tools,
        output=output,
        process_key=process_key,
    )


def resuming_answered_calls(inv: Invocation) -> Invocation:
    """``inv`` (a resumed session's) for a session whose held calls were answered in its
    transcript (`tool_result_entries`): the CLI goes on with the turn by itself, and no
    prompt is written.

    ``CLAUDE_CODE_RESUME_INTERRUPTED_TURN`` makes the resumed CLI call the API at once;
    with its resume prompt a blank the request carries just the results (measured with the
    pinned CLI: the blank is recorded as a meta entry and never sent). Only the start-up
    reads them, so the process key stays the plan's: the process serves later turns.
    """
    env = {**inv.env, "CLAUDE_CODE_RESUME_INTERRUPTED_TURN": "1",
           "CLAUDE_CODE_RESUME_PROMPT": " "}
    return attrs.evolve(inv, env=env, stdin=b"")


def _client_tool_env(env: dict[str, str], tools: ToolSet) -> None:
    # The client's names reach Claude unprefixed (client-tools reference §4.1).
    env["CLAUDE_AGENT_SDK_MCP_NO_PREFIX"] = "1"
    # Long results inline (§4.3): the tools' own cap is 500,000 characters.
    env.setdefault("MAX_MCP_OUTPUT_TOKENS", "125000")
    if not tools.parallel:
        # Per process, every request (§8): fine, parallel_tool_calls is part of the shape.
        env.setdefault("CLAUDE_CODE_EXTRA_BODY",
                       '{"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}')


def _tool_and_extra_flags(request: ChatCompletionRequest, options: PlanOptions,
                          client: ToolSet | None, *, lean: bool) -> list[str]:
    """The argv after the system prompt: tools, limits, directories, settings, MCP, effort."""
    argv: list[str] = []
    # Lean has none of Claude Code's tools whatever the settings; its MCP servers stay
    # (the operator configured them, as for client tool turns).
    server = ("" if lean else options.tools if client is None
              else options.tools_with_client_tools)
    tools = narrowed_tools(server, request.enabled_tools)
    if tools is not None:
        argv += ["--tools", tools]
    allowed = list(options.allowed_tools)
    mcp_configs = list(options.mcp_configs)
    if client is not None:
        # The in-band server (client-tools reference §1.1): the CLI asks the gateway.
        name = client.server_name
        mcp_configs.append(json.dumps({"mcpServers": {name: {"type": "sdk", "name": name}}},
                                      separators=(",", ":")))
        allowed.append(f"mcp__{name}")  # MCP calls need an allow rule in -p (§5)
    if allowed:
        argv += ["--allowedTools", *allowed]
    disallowed = narrowed_disallowed("" if lean else options.tools, options.disallowed_tools,
                                     request.disabled_tools)
    if disallowed:
        argv += ["--disallowedTools", *disallowed]
    max_turns = narrowed_max_turns(options.max_turns, request.max_turns)
    if max_turns > 0:
        argv += ["--max-turns", str(max_turns)]
    for directory in options.add_dirs:
        argv += ["--add-dir", directory]
    if options.setting_sources:
        argv += ["--setting-sources", options.setting_sources]
    if mcp_configs:
        argv += ["--mcp-config", *mcp_configs]
    if options.mcp_debug:
        # "=": the filter is optional, so a separate argument would be taken as a prompt.
        argv.append("--debug=mcp")
    if options.fallback_model:
        argv += ["--fallback-model", options.fallback_model]
    if request.reasoning_effort is not None:
        argv += ["--effort", _EFFORT[request.reasoning_effort]]
    return argv
