from __future__ import annotations

import json
from typing import Any

import pytest

from ccproto import (
    InvalidRequestError,
    Invocation,
    PlanOptions,
    SessionPlan,
    plan_invocation,
    structure_request,
)

OPTS = PlanOptions(executable="/bin/claude", cwd="/ws", max_retries=1)


def plan(messages: list[dict[str, Any]], options: PlanOptions = OPTS, **fields: Any) -> Any:
    body = json.dumps({"model": fields.pop("model", ""), "messages": messages, **fields})
    return plan_invocation(structure_request(body), options, inherited_env={"HOME": "/h"})


def stdin_blocks(inv: Any) -> list[dict[str, Any]]:
    assert inv.stdin.endswith(b"\n") and inv.stdin.count(b"\n") == 1
    line = json.loads(inv.stdin)
    assert line["type"] == "user" and line["message"]["role"] == "user"
    return line["message"]["content"]  # type: ignore[no-any-return]


def test_the_plain_plan() -> None:
    inv = plan([{"role": "user", "content": "hello"}])
    assert inv.argv[:9] == ("/bin/claude", "-p", "--input-format", "stream-json",
                            "--output-format", "stream-json", "--verbose",
                            "--include-partial-messages", "--model")
    assert inv.argv[9] == "sonnet"  # default model for "" and "default"
    assert "--strict-mcp-config" in inv.argv and "--append-system-prompt" not in inv.argv
    assert "hello" not in " ".join(inv.argv)  # the prompt goes on stdin, never in argv
    assert stdin_blocks(inv) == [{"type": "text", "text": "hello"}]
    assert inv.env["HOME"] == "/h" and inv.env["CLAUDE_CODE_MAX_RETRIES"] == "1"
    assert inv.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert inv.cwd == "/ws"


def test_system_and_developer_messages_become_the_system_prompt() -> None:
    msgs = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "q"},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]}]
    msgs.append({"role": "user", "content": "q2"})
    inv = plan(msgs)
    i = inv.argv.index("--append-system-prompt")
    assert inv.argv[i + 1] == "Be terse.\n\nNo emoji."
    replace = PlanOptions(executable="c", cwd="/", system_prompt_mode="replace")
    assert "--system-prompt" in plan(msgs, replace).argv


def test_earlier_turns_are_kept_as_a_quoted_history() -> None:
    inv = plan([
        {"role": "user", "content": "My name is Bob."},
        {"role": "assistant", "content": "Hi Bob."},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
    ])
    history, results, final = stdin_blocks(inv)
    assert final == {"type": "text", "text": "What is my name?"}
    text = history["text"]
    assert text.startswith("<conversation_history>") and text.endswith("</conversation_history>")
    order = [text.index(s) for s in ("[user]\nMy name is Bob.", "[assistant]\nHi Bob.",
                                     "(called f with {})")]
    assert order == sorted(order)
    # The result answers the call right before the question: part of the new turn.
    assert results == {"type": "text", "text": "[tool result c1]\n42"}


def test_options_reach_the_argv() -> None:
    opts = PlanOptions(executable="c", cwd="/", tools="", allowed_tools=("Bash(sleep *)", "Read"),
                       permission_mode="acceptEdits", max_turns=3, extra_env={"X": "1"})
    inv = plan([{"role": "user", "content": "q"}], opts, model="opus", reasoning_effort="minimal")
    argv = list(inv.argv)
    assert argv[argv.index("--model") + 1] == "opus"
    assert argv[argv.index("--tools") + 1] == ""
    assert argv[argv.index("--allowedTools") + 1: argv.index("--allowedTools") + 3] == ["Bash(sleep *)", "Read"]
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert argv[argv.index("--max-turns") + 1] == "3"
    assert argv[argv.index("--effort") + 1] == "low"
    assert inv.env["X"] == "1"


@pytest.mark.parametrize(
    ("messages", "fields", "param"),
    [
        ([], {}, "messages"),
        ([{"role": "system", "content": "s"}], {}, "messages"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], {}, "messages[1].role"),
        ([{"role": "user", "content": "   "}], {}, "messages[0]"),
        ([{"role": "user", "content": "q"}], {"n": 2}, "n"),
        ([{"role": "user", "content": "q"}], {"tools": [{"type": "function"}]}, "tools[0].name"),
        ([{"role": "user", "content": "q"}], {"reasoning_effort": "huge"}, "reasoning_effort"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}], {},
         "messages[0].content[0]"),
        ([{"role": "user", "content": [{"type": "input_audio"}]}], {}, "messages[0].content[0].type"),
    ],
)
def test_requests_the_cli_cannot_serve_are_400s(messages: list[dict[str, Any]],
                                                 fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        plan(messages, **fields)
    assert info.value.param == param and info.value.status_hint == 400


def test_planning_is_pure() -> None:
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    assert plan(msgs) == plan(msgs)


def session_plan(session: SessionPlan | None, **fields: Any) -> Invocation:
    msgs = [{"role": "system", "content": fields.pop("system", "Be terse.")},
            {"role": "user", "content": "earlier"}, {"role": "assistant", "content": "yes"},
            {"role": "user", "content": "q"}]
    body = json.dumps({"model": fields.pop("model", "opus"), "messages": msgs, **fields})
    return plan_invocation(structure_request(body), OPTS, inherited_env={"HOME": "/h", "A": "1"},
                           session=session)


SESSIONS = [
    SessionPlan(session_id="s-1", resume=False, cwd="/ws/conv_1"),
    SessionPlan(session_id="s-2", resume=False, cwd="/ws/conv_2"),
    SessionPlan(session_id="s-1", resume=True, cwd="/ws/conv_1"),
    SessionPlan(session_id="s-3", resume=True, cwd="/elsewhere", system_prompt="unused"),
]


def without_session(inv: Invocation) -> object:
    """The argv with the session flags and their values taken out, and the env, sorted."""
    argv = list(inv.argv)
    for flag in ("--session-id", "--resume"):
        if flag in argv:
            del argv[argv.index(flag):argv.index(flag) + 2]
    return tuple(argv), tuple(sorted(inv.env.items()))


def test_the_process_key_leaves_the_session_out() -> None:
    plans = [session_plan(s) for s in SESSIONS]
    assert len({p.argv for p in plans}) == len(plans)  # the sessions differ in the argv...
    assert len({p.process_key for p in plans}) == 1  # ...and nowhere else
    for inv in plans:
        assert "--session-id" not in inv.process_key[0] and "--resume" not in inv.process_key[0]
        assert inv.process_key == without_session(inv)
        hash(inv.process_key)


def test_the_process_key_tells_different_processes_apart() -> None:
    session = SESSIONS[0]
    key = session_plan(session).process_key
    assert session_plan(session, model="sonnet").process_key != key
    assert session_plan(session, system="Be verbose.").process_key != key
    assert session_plan(session, reasoning_effort="high").process_key != key
    stateless = session_plan(None)
    assert stateless.process_key != key and stateless.process_key == without_session(stateless)


def test_a_hand_built_invocation_keys_on_all_of_it() -> None:
    inv = Invocation(argv=("c", "--resume", "x"), env={"B": "2", "A": "1"}, stdin=b"", cwd="/")
    assert inv.process_key == (("c", "--resume", "x"), (("A", "1"), ("B", "2")))


# ---- client tools and structured output ------------------------------------------------------

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
TIME = {"type": "function", "function": {"name": "get_time"}}
ASK = [{"role": "user", "content": "Weather?"}]


def flag(inv: Any, name: str) -> str:
    argv = list(inv.argv)
    return argv[argv.index(name) + 1]  # type: ignore[no-any-return]


def test_client_tools_get_an_in_band_mcp_server() -> None:
    inv = plan(ASK, tools=[WEATHER])
    assert inv.client_tools is not None and inv.client_tools.names == {"get_weather"}
    server = inv.client_tools.server_name
    assert json.loads(flag(inv, "--mcp-config")) == {
        "mcpServers": {server: {"type": "sdk", "name": server}}}
    assert flag(inv, "--allowedTools") == f"mcp__{server}"
    assert flag(inv, "--tools") == ""  # Claude Code's own tools off by default
    assert "--strict-mcp-config" in inv.argv
    # No system message: a plain one replaces Claude Code's, which describes its tools.
    assert "helpful assistant" in flag(inv, "--system-prompt")
    assert "--append-system-prompt" not in inv.argv
    assert inv.env["CLAUDE_AGENT_SDK_MCP_NO_PREFIX"] == "1"
    assert "CLAUDE_CODE_EXTRA_BODY" not in inv.env
    assert stdin_blocks(inv) == [{"type": "text", "text": "Weather?"}]


def value(argv: tuple[str, ...], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_lean_has_no_claude_code_tools_and_only_the_clients_system_prompt() -> None:
    msgs = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "q"}]
    full = plan(msgs, model="sonnet")
    assert value(full.argv, "--append-system-prompt") == "Be terse."
    assert "--tools" not in full.argv and "--system-prompt" not in full.argv
    for lean in (plan(msgs, model="sonnet-chat"), plan(msgs, model="sonnet", profile="lean"),
                 plan(msgs, PlanOptions(executable="/bin/claude", cwd="/ws", profile="lean"))):
        assert value(lean.argv, "--model") == "sonnet"
        assert value(lean.argv, "--tools") == ""
        assert value(lean.argv, "--system-prompt") == "Be terse."
        assert "--append-system-prompt" not in lean.argv
        assert lean.env["CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS"] == "1"
        assert lean.env["CLAUDE_CODE_DISABLE_CLAUDE_MDS"] == "1"
        assert lean.process_key != full.process_key
    assert "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS" not in full.env
    # The alias, the field and the setting plan one and the same process.
    assert plan(msgs, model="sonnet-chat").process_key == \
        plan(msgs, model="sonnet", profile="lean").process_key


def test_lean_without_a_system_prompt_gets_a_neutral_one_not_claude_codes() -> None:
    lean = plan([{"role": "user", "content": "q"}], model="sonnet-chat")
    assert value(lean.argv, "--system-prompt") == "You are a helpful assistant."


def test_lean_overrides_the_servers_tools_and_prompt_mode() -> None:
    opts = PlanOptions(executable="c", cwd="/", tools="Bash,Read", system_prompt_mode="append",
                       tools_with_client_tools="default",
                       system_prompt_mode_with_client_tools="append",
                       disallowed_tools=("WebFetch",))
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    for fields in ({}, {"tools": [tool]}):
        lean = plan(msgs, opts, model="opus-chat", **fields)
        assert value(lean.argv, "--tools") == "" and value(lean.argv, "--system-prompt") == "S"
        full = plan(msgs, opts, model="opus", **fields)
        assert value(full.argv, "--tools") != "" and "--system-prompt" not in full.argv
    with pytest.raises(InvalidRequestError) as info:
        plan(msgs, opts, model="opus-chat", enabled_tools=["Bash"])  # lean offers none
    assert info.value.param == "enabled_tools"


def test_the_clients_system_prompt_replaces_claude_codes() -> None:
    inv = plan([{"role": "system", "content": "You are a weather bot."}, *ASK], tools=[WEATHER])
    assert flag(inv, "--system-prompt") == "You are a weather bot."


def test_operator_tools_and_allow_rules_stay_next_to_the_bridge() -> None:
    opts = PlanOptions(executable="c", cwd="/", allowed_tools=("Read",),
                       tools_with_client_tools="Read", mcp_configs=("/etc/mcp.json",))
    inv = plan(ASK, opts, tools=[WEATHER])
    argv = list(inv.argv)
    allowed = argv[argv.index("--allowedTools") + 1: argv.index("--allowedTools") + 3]
    assert allowed == ["Read", f"mcp__{inv.client_tools.server_name}"]
    assert flag(inv, "--tools") == "Read"
    configs = argv[argv.index("--mcp-config") + 1: argv.index("--mcp-config") + 3]
    assert configs[0] == "/etc/mcp.json" and json.loads(configs[1])["mcpServers"]


def test_parallel_tool_calls_false_disables_parallel_use_for_the_process() -> None:
    inv = plan(ASK, tools=[WEATHER], parallel_tool_calls=False)
    assert json.loads(inv.env["CLAUDE_CODE_EXTRA_BODY"]) == {
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}
    assert inv.process_key != plan(ASK, tools=[WEATHER]).process_key


def test_json_schema_and_json_object() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": {
        "type": "object", "required": ["b"], "properties": {"b": {"type": "integer"}, "a": {}}}}}
    inv = plan(ASK, response_format=fmt)
    assert flag(inv, "--json-schema") == \
        '{"properties":{"a":{},"b":{"type":"integer"}},"required":["b"],"type":"object"}'
    assert inv.output is not None and inv.client_tools is None
    assert "--mcp-config" not in inv.argv
    obj = plan(ASK, response_format={"type": "json_object"})
    assert flag(obj, "--json-schema") == '{"type":"object"}'
    assert "--json-schema" not in plan(ASK, response_format={"type": "text"}).argv


def test_the_process_key_follows_the_tools_and_the_schema_not_the_choice() -> None:
    def key(**fields: Any) -> Any:
        return plan(ASK, **fields).process_key

    base = key(tools=[WEATHER])
    assert base == key(tools=[WEATHER], tool_choice="auto")
    assert base == key(tools=[WEATHER], tool_choice="required")
    assert base == key(tools=[WEATHER],
                       tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert base != key(tools=[WEATHER, TIME])
    assert base != key(tools=[TIME])
    assert base != key()
    fmt = {"type": "json_schema", "json_schema": {"schema": {"properties": {"a": {}}}}}
    other = {"type": "json_schema", "json_schema": {"schema": {"properties": {"b": {}}}}}
    assert key(response_format=fmt) != key(response_format=other) != key()


@pytest.mark.parametrize(("choice", "nudge"), [
    ("required", "(Respond by calling one of the provided tools.)"),
    ({"type": "function", "function": {"name": "get_weather"}},
     "(Respond by calling the tool get_weather.)"),
])
def test_a_forced_tool_choice_is_asked_for_in_the_turns_text(choice: Any, nudge: str) -> None:
    # The CLI never sends tool_choice (reference §8): per turn, so in stdin only.
    inv = plan(ASK, tools=[WEATHER], tool_choice=choice)
    assert stdin_blocks(inv) == [{"type": "text", "text": "Weather?"},
                                 {"type": "text", "text": nudge}]
    assert nudge not in " ".join(inv.argv)


def test_tool_choice_none_plans_no_tools() -> None:
    inv = plan(ASK, tools=[WEATHER], tool_choice="none")
    assert inv.client_tools is None and "--mcp-config" not in inv.argv
    assert "CLAUDE_AGENT_SDK_MCP_NO_PREFIX" not in inv.env


@pytest.mark.parametrize(("fields", "param"), [
    ({"response_format": {"type": "yaml"}}, "response_format.type"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].name"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
     "tool_choice"),
])
def test_bad_tools_and_formats_are_400s_with_their_param(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        plan(ASK, **fields)
    assert info.value.status_hint == 400 and info.value.param == param
