"""ccproto.tools and ccproto.mcp: the client's tools as an in-band MCP server (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproto import (
    CallCancelled,
    ControlRequest,
    InvalidRequestError,
    ToolCallRequest,
    ToolSet,
    client_tools,
    interrupt_line,
    mcp_answer,
    normalize_schema,
    output_format,
    parse_record,
    tool_error_line,
    tool_result_line,
)

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def fn(name: str, parameters: Any = CITY, description: str = "d") -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": parameters}}


def rejected(**kw: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        client_tools(**kw)
    assert info.value.status_hint == 400
    return info.value


# ---- normalize_schema ------------------------------------------------------------------------

def test_a_schema_without_a_type_gets_type_object() -> None:
    assert normalize_schema({"properties": {"a": {"type": "string"}}}) == {
        "type": "object", "properties": {"a": {"type": "string"}}}
    assert normalize_schema({}) == {"type": "object", "properties": {}}


@pytest.mark.parametrize("schema", [None, [], "object", 3, True])
def test_non_object_input_becomes_an_empty_object_schema(schema: Any) -> None:
    assert normalize_schema(schema) == {"type": "object", "properties": {}}


@pytest.mark.parametrize("combiner", ["anyOf", "oneOf", "allOf"])
def test_a_top_level_combiner_is_flattened(combiner: str) -> None:
    schema = {"type": "object", "properties": {"common": {"type": "integer"}},
              "required": ["common"], combiner: [
                  {"type": "object", "properties": {"a": {"type": "string"}, "x": {"type": "string"}},
                   "required": ["a", "x"]},
                  {"properties": {"b": {"type": "number"}, "x": {"type": "string"}},
                   "required": ["b", "x"]}]}
    flat = normalize_schema(schema)
    assert combiner not in flat and flat["type"] == "object"
    assert flat["properties"] == {"common": {"type": "integer"}, "a": {"type": "string"},
                                  "x": {"type": "string"}, "b": {"type": "number"}}
    # Required: the top level's, plus every allOf branch's (all hold), or what every
    # anyOf/oneOf branch requires (any one may be the one that holds).
    expected = ["a", "b", "common", "x"] if combiner == "allOf" else ["common", "x"]
    assert flat["required"] == expected


def test_flattening_without_common_required_names_drops_required() -> None:
    flat = normalize_schema({"anyOf": [{"properties": {"a": {}}, "required": ["a"]},
                                       {"properties": {"b": {}}, "required": ["b"]}]})
    assert "required" not in flat and set(flat["properties"]) == {"a", "b"}


def test_nested_schemas_are_left_byte_equal() -> None:
    # Reference §4.2: nested combiners, $defs/$ref, formats and nullable types pass as is.
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"unit": {"type": "string", "enum": ["c", "f"]}},
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "unit": {"$ref": "#/$defs/unit"},
            "opt": {"type": ["string", "null"]},
            "either": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {
                "deep": {"oneOf": [{"const": 1}, {"const": 2}]}}}]},
        },
        "required": ["when"],
        "additionalProperties": False,
    }
    before = json.dumps(schema)
    assert json.dumps(normalize_schema(schema)) == before
    assert json.dumps(schema) == before  # the input is not modified either


# ---- client_tools ----------------------------------------------------------------------------

def test_chat_tools_nested_and_responses_tools_flat_are_the_same() -> None:
    chat = client_tools([fn("get_weather", description="The weather.")])
    flat = client_tools([{"type": "function", "name": "get_weather",
                          "description": "The weather.", "parameters": CITY}])
    assert chat is not None and flat is not None
    assert chat == flat and chat.server_name == flat.server_name
    (tool,) = chat.tools
    assert (tool.name, tool.description, tool.kind) == ("get_weather", "The weather.", "function")
    assert tool.parameters == CITY
    assert chat.choice == "auto" and chat.parallel


def test_a_function_without_parameters_takes_an_empty_object() -> None:
    tools = client_tools([{"type": "function", "function": {"name": "now"}}])
    assert tools is not None and tools.tools[0].parameters == {"type": "object", "properties": {}}
    assert tools.tools[0].description == ""


@pytest.mark.parametrize("tool", [
    {"type": "custom", "custom": {"name": "sql", "format": {
        "type": "grammar", "syntax": "lark", "definition": "start: SELECT"}}},
    {"type": "custom", "name": "sql", "format": {
        "type": "grammar", "syntax": "lark", "definition": "start: SELECT"}},
])
def test_a_custom_tool_takes_one_string_input_described_by_its_grammar(tool: Any) -> None:
    tools = client_tools([tool])
    assert tools is not None
    (custom,) = tools.tools
    assert custom.kind == "custom" and tools.kind_of("sql") == "custom"
    assert custom.parameters["required"] == ["input"]
    prop = custom.parameters["properties"]["input"]
    assert prop["type"] == "string"
    assert "lark grammar" in prop["description"] and "start: SELECT" in prop["description"]


def test_a_custom_tool_without_grammar_takes_free_text() -> None:
    tools = client_tools([{"type": "custom", "name": "note"}])
    assert tools is not None
    assert "free-form" in tools.tools[0].parameters["properties"]["input"]["description"]


def test_legacy_functions_and_function_call() -> None:
    legacy = client_tools(None, functions=[{"name": "f", "parameters": CITY}],
                          function_call={"name": "f"})
    assert legacy is not None and legacy.names == {"f"} and legacy.choice == "f"
    assert client_tools(None, functions=[{"name": "f"}], function_call="none") is None
    auto = client_tools(None, functions=[{"name": "f"}], function_call="auto")
    assert auto is not None and auto.choice == "auto"
    err = rejected(tools=None, functions=[{"name": "f"}, {"name": "f"}])
    assert err.param == "functions[1].name"


@pytest.mark.parametrize(("choice", "expected"), [
    (None, "auto"), ("auto", "auto"), ("required", "required"),
    ({"type": "function", "function": {"name": "b"}}, "b"),
    ({"type": "function", "name": "b"}, "b"),  # Responses' flat form
    ({"type": "allowed_tools", "mode": "required", "tools": []}, "required"),
])
def test_tool_choice(choice: Any, expected: str) -> None:
    tools = client_tools([fn("a"), fn("b")], choice)
    assert tools is not None and tools.choice == expected


def test_tool_choice_none_offers_no_tools() -> None:
    assert client_tools([fn("a")], "none") is None
    assert client_tools(None) is None and client_tools([]) is None


@pytest.mark.parametrize("choice", [
    "sometimes", {"type": "function", "function": {"name": "nope"}}, {"type": "weird"}, 3])
def test_a_bad_tool_choice_is_a_400_naming_tool_choice(choice: Any) -> None:
    err = rejected(tools=[fn("a")], tool_choice=choice)
    assert err.param == "tool_choice"


def test_a_named_tool_choice_says_which_name_is_missing() -> None:
    err = rejected(tools=[fn("a")], tool_choice={"type": "function", "function": {"name": "nope"}})
    assert "nope" in err.message


def test_duplicate_names_are_a_400() -> None:
    err = rejected(tools=[fn("a"), fn("b"), fn("a")])
    assert err.param == "tools[2].name" and "Duplicate" in err.message


@pytest.mark.parametrize("name", ["", "with space", "with.dot", "uniécode", "x" * 65, None, 3])
def test_names_must_match_openais_pattern(name: Any) -> None:
    err = rejected(tools=[fn("ok"), fn(name)])
    assert err.param == "tools[1].function.name"


def test_names_at_the_limits_are_fine() -> None:
    tools = client_tools([fn("x" * 64), fn("a-b_C9")])
    assert tools is not None and tools.names == {"x" * 64, "a-b_C9"}


@pytest.mark.parametrize(("tool", "param"), [
    (fn("a", parameters=["not", "an", "object"]), "tools[0].function.parameters"),
    (fn("a", parameters="object"), "tools[0].function.parameters"),
    ({"type": "function", "function": "a"}, "tools[0].function"),
    ("a", "tools[0]"),
    ({"type": "function", "function": {"name": "a", "description": 3}},
     "tools[0].function.description"),
    ({"type": "web_search"}, "tools[0].type"),
])
def test_malformed_tools_are_a_400_naming_the_field(tool: Any, param: str) -> None:
    assert rejected(tools=[tool]).param == param


def test_parallel_tool_calls_false_is_kept() -> None:
    tools = client_tools([fn("a")], parallel=False)
    assert tools is not None and not tools.parallel
    tools = client_tools([fn("a")], parallel=None)
    assert tools is not None and tools.parallel


def test_the_server_name_is_a_stable_digest_of_what_claude_is_offered() -> None:
    def name(*tools: Any, choice: Any = None, parallel: bool | None = None) -> str:
        ts = client_tools(list(tools), choice, parallel=parallel)
        assert ts is not None
        return ts.server_name

    base = name(fn("a"), fn("b"))
    assert base == name(fn("a"), fn("b"))
    assert base.startswith("c") and len(base) == 13
    # How the tools are to be used is not what is offered: same server.
    assert base == name(fn("a"), fn("b"), choice="required", parallel=False)
    others = {name(fn("a")), name(fn("b"), fn("a")), name(fn("a"), fn("b", description="x")),
              name(fn("a"), fn("b", parameters={"type": "object"}))}
    assert base not in others and len(others) == 4


@given(st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), min_size=1, max_size=5,
                unique=True),
       st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), min_size=1, max_size=5,
                unique=True))
def test_server_names_differ_exactly_when_the_tool_sets_do(a: list[str], b: list[str]) -> None:
    sa, sb = client_tools([fn(n) for n in a]), client_tools([fn(n) for n in b])
    assert sa is not None and sb is not None
    assert (sa.server_name == sb.server_name) == (a == b)


def test_the_mcp_listing_of_a_tool() -> None:
    tools = client_tools([fn("get_weather", description="The weather.")])
    assert tools is not None
    assert tools.mcp_tools() == [{
        "name": "get_weather", "description": "The weather.", "inputSchema": CITY,
        # Parallel calls arrive together only when read-only (reference §3); long results
        # stay inline (§4.3).
        "annotations": {"readOnlyHint": True},
        "_meta": {"anthropic/maxResultSizeChars": 500000},
    }]


# ---- output_format ---------------------------------------------------------------------------

def test_output_formats() -> None:
    assert output_format(None) is None and output_format({"type": "text"}) is None
    obj = output_format({"type": "json_object"})
    assert obj is not None and obj.flag() == '{"type":"object"}'
    schema = output_format({"type": "json_schema", "json_schema": {
        "name": "person", "schema": {"properties": {"b": {}, "a": {}}}}})
    assert schema is not None and schema.name == "person"
    assert schema.flag() == '{"properties":{"a":{},"b":{}},"type":"object"}'
    flat = output_format({"type": "json_schema", "name": "p", "schema": {"type": "object"}},
                         param="text.format")
    assert flat is not None and flat.name == "p"


@pytest.mark.parametrize(("fmt", "param"), [
    ("json", "response_format"),
    ({"type": "yaml"}, "response_format.type"),
    ({"type": "json_schema"}, "response_format.json_schema"),
    ({"type": "json_schema", "schema": None}, "response_format.schema"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"schema": "object"}},
     "response_format.json_schema.schema"),
])
def test_bad_response_formats_are_a_400_naming_the_field(fmt: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        output_format(fmt)
    assert info.value.status_hint == 400 and info.value.param == param


# ---- mcp.answer ------------------------------------------------------------------------------

TOOLS = client_tools([fn("get_weather")])


def control(message: dict[str, Any], *, subtype: str = "mcp_message",
            rid: str = "req-1") -> ControlRequest:
    record = parse_record({"type": "control_request", "request_id": rid, "request": {
        "subtype": subtype, "server_name": "c1", "message": {**message, "jsonrpc": "2.0"}}})
    assert isinstance(record, ControlRequest)
    return record


def answered(line: bytes | ToolCallRequest | CallCancelled) -> dict[str, Any]:
    assert isinstance(line, bytes) and line.endswith(b"\n") and line.count(b"\n") == 1
    return json.loads(line)  # type: ignore[no-any-return]


def rpc_result(line: bytes | ToolCallRequest | CallCancelled, rid: str = "req-1") -> Any:
    obj = answered(line)
    assert obj["type"] == "control_response"
    response = obj["response"]
    assert response["subtype"] == "success" and response["request_id"] == rid
    return response["response"]["mcp_response"]


def test_initialize_echoes_the_protocol_version_and_offers_tools() -> None:
    # The CLI's own initialize (reference §1.1).
    reply = rpc_result(mcp_answer(control({"method": "initialize", "id": 0, "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "claude-code", "version": "2.1.197"}}}), TOOLS))
    assert reply["id"] == 0
    assert reply["result"]["protocolVersion"] == "2025-11-25"
    assert reply["result"]["capabilities"] == {"tools": {}}
    assert reply["result"]["serverInfo"]["name"]


def test_notifications_and_ping_get_an_empty_result() -> None:
    assert rpc_result(mcp_answer(control({"method": "notifications/initialized"}), TOOLS))[
        "result"] == {}
    ping = rpc_result(mcp_answer(control({"method": "ping", "id": 7}), TOOLS))
    assert ping == {"jsonrpc": "2.0", "id": 7, "result": {}}


def test_tools_list_lists_the_tools() -> None:
    assert TOOLS is not None
    reply = rpc_result(mcp_answer(control({"method": "tools/list", "id": 1}), TOOLS))
    assert reply == {"jsonrpc": "2.0", "id": 1, "result": {"tools": TOOLS.mcp_tools()}}
    empty = rpc_result(mcp_answer(control({"method": "tools/list", "id": 1}), None))
    assert empty["result"] == {"tools": []}


def test_tools_call_is_a_call_to_hold() -> None:
    request = control({"method": "tools/call", "id": 2, "params": {
        "name": "get_weather", "arguments": {"city": "Paris"},
        "_meta": {"claudecode/toolUseId": "toolu_hold_1", "progressToken": 2}}}, rid="b46c")
    call = mcp_answer(request, TOOLS)
    assert isinstance(call, ToolCallRequest)
    assert (call.request_id, call.rpc_id, call.tool_use_id, call.name) == (
        "b46c", 2, "toolu_hold_1", "get_weather")
    assert call.arguments == {"city": "Paris"}


def test_a_tools_call_without_an_id_is_resolved_or_refused() -> None:
    # After the CLI's non-streaming fallback the call carries only a progress token.
    message = {"method": "tools/call", "id": 3, "params": {
        "name": "get_weather", "arguments": {"city": "Paris"}, "_meta": {"progressToken": 3}}}
    seen: list[tuple[str, Any]] = []

    def resolve(name: str, arguments: Any) -> str | None:
        seen.append((name, arguments))
        return "toolu_found"

    call = mcp_answer(control(message), TOOLS, resolve)
    assert isinstance(call, ToolCallRequest) and call.tool_use_id == "toolu_found"
    assert seen == [("get_weather", {"city": "Paris"})]
    refused = rpc_result(mcp_answer(control(message), TOOLS, lambda n, a: None))
    assert refused["id"] == 3 and refused["error"]["code"] == -32602
    assert "error" in rpc_result(mcp_answer(control(message), TOOLS))


def test_cancelled_notification_names_the_call_and_is_acknowledged() -> None:
    cancelled = mcp_answer(control({"method": "notifications/cancelled", "params": {
        "requestId": 2, "reason": "AbortError: remote-cancel"}}), TOOLS)
    assert isinstance(cancelled, CallCancelled) and cancelled.rpc_id == 2
    assert rpc_result(cancelled.ack)["result"] == {}


def test_an_unknown_method_is_method_not_found() -> None:
    reply = rpc_result(mcp_answer(control({"method": "resources/list", "id": 4}), TOOLS))
    assert reply["id"] == 4 and reply["error"]["code"] == -32601
    assert "resources/list" in reply["error"]["message"]


def test_other_control_requests_are_refused() -> None:
    request = parse_record({"type": "control_request", "request_id": "p1", "request": {
        "subtype": "can_use_tool", "tool_name": "get_weather", "input": {"city": "Paris"},
        "tool_use_id": "toolu_X1"}})
    assert isinstance(request, ControlRequest)
    obj = answered(mcp_answer(request, TOOLS))
    assert obj == {"type": "control_response", "response": {
        "subtype": "error", "request_id": "p1", "error": "ccserver does not answer 'can_use_tool'"}}


HELD = ToolCallRequest(request_id="b46c", rpc_id=2, tool_use_id="toolu_1", name="get_weather",
                       arguments={"city": "Paris"})


def test_the_lines_answering_a_held_call_are_exact() -> None:
    assert tool_result_line(HELD, "sunny, 21C") == (
        b'{"type":"control_response","response":{"subtype":"success","request_id":"b46c",'
        b'"response":{"mcp_response":{"jsonrpc":"2.0","id":2,"result":{"content":'
        b'[{"type":"text","text":"sunny, 21C"}]}}}}}\n')
    failed = json.loads(tool_result_line(HELD, "no such city", is_error=True))
    assert failed["response"]["response"]["mcp_response"]["result"] == {
        "content": [{"type": "text", "text": "no such city"}], "isError": True}
    assert tool_error_line(HELD, "gateway: client went away") == (
        b'{"type":"control_response","response":{"subtype":"error","request_id":"b46c",'
        b'"error":"gateway: client went away"}}\n')
    assert interrupt_line("i1") == (
        b'{"type":"control_request","request_id":"i1","request":{"subtype":"interrupt"}}\n')


def test_non_ascii_results_stay_one_line() -> None:
    line = tool_result_line(HELD, "Zürich\nline two \u2028")
    assert line.count(b"\n") == 1
    assert json.loads(line)["response"]["response"]["mcp_response"]["result"]["content"][0][
        "text"] == "Zürich\nline two \u2028"


def test_toolset_of_no_tools_is_not_built() -> None:
    assert isinstance(TOOLS, ToolSet)
    assert client_tools([], "required") is None
