"""Claude Code options in the plan: permissions, dirs, MCP, models, and request narrowing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproto import (
    CLI_MODEL_ALIASES,
    DEFAULT_TOOLS,
    InvalidRequestError,
    Invocation,
    PlanOptions,
    model_names,
    plan_invocation,
    resolve_model,
    resolve_profile,
    structure_request,
)

OPTS = PlanOptions(executable="claude", cwd="/ws")


def plan(options: PlanOptions = OPTS, **fields: Any) -> Invocation:
    body = {"model": "", "messages": [{"role": "user", "content": "q"}], **fields}
    return plan_invocation(structure_request(json.dumps(body)), options, inherited_env={})


def values(argv: tuple[str, ...], flag: str) -> list[str]:
    """The values after each occurrence of a flag, up to the next flag."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == flag:
            for value in argv[i + 1:]:
                if value.startswith("--"):
                    break
                out.append(value)
    return out


def test_defaults_keep_permissions_and_workspace_settings_out() -> None:
    inv = plan()
    assert values(inv.argv, "--permission-mode") == ["default"]
    assert "--dangerously-skip-permissions" not in inv.argv and "IS_SANDBOX" not in inv.env
    assert values(inv.argv, "--setting-sources") == ["user"]
    assert "--strict-mcp-config" in inv.argv and "--mcp-config" not in inv.argv
    for flag in ("--add-dir", "--disallowedTools", "--fallback-model", "--tools", "--max-turns"):
        assert flag not in inv.argv
    assert not any(a.startswith("--debug") for a in inv.argv)


def test_server_options_reach_the_argv() -> None:
    opts = PlanOptions(
        executable="claude", cwd="/ws", add_dirs=("/data/a", "/data/b"),
        disallowed_tools=("Bash(rm *)", "WebFetch"), setting_sources="",
        mcp_configs=("/etc/gw/mcp.json", "/home/gw/.claude.json"), mcp_debug=True,
        fallback_model="haiku", allowed_tools=("mcp__mini",),
    )
    argv = plan(opts).argv
    assert values(argv, "--add-dir") == ["/data/a", "/data/b"]
    assert values(argv, "--disallowedTools") == ["Bash(rm *)", "WebFetch"]
    assert values(argv, "--mcp-config") == ["/etc/gw/mcp.json", "/home/gw/.claude.json"]
    assert "--strict-mcp-config" in argv and "--debug=mcp" in argv
    assert values(argv, "--fallback-model") == ["haiku"]
    assert values(argv, "--allowedTools") == ["mcp__mini"]
    assert "--setting-sources" not in argv


def test_skip_permissions_replaces_the_mode_and_declares_a_sandbox() -> None:
    inv = plan(PlanOptions(executable="claude", cwd="/ws", skip_permissions=True,
                           permission_mode="acceptEdits"))
    assert "--dangerously-skip-permissions" in inv.argv and "--permission-mode" not in inv.argv
    assert inv.env["IS_SANDBOX"] == "1"  # refused as root without it (reference §1.2)


# ---- models -------------------------------------------------------------------------------

MAPPED = PlanOptions(executable="claude", cwd="/ws", default_model="fast",
                     model_map={"gpt-4o": "sonnet", "fast": "haiku"}, models=("my-model",))


@pytest.mark.parametrize(("asked", "cli"), [
    ("", "haiku"), ("default", "haiku"),  # the default goes through the map too
    ("gpt-4o", "sonnet"), ("opus", "opus"), ("sonnet[1m]", "sonnet[1m]"),
    ("my-model", "my-model"), ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
])
def test_model_names_resolve(asked: str, cli: str) -> None:
    inv = plan(MAPPED, model=asked)
    assert values(inv.argv, "--model") == [cli]


def test_an_unknown_model_is_a_400_listing_the_valid_ones() -> None:
    with pytest.raises(InvalidRequestError) as info:
        plan(MAPPED, model="gpt-5")
    err = info.value
    assert err.status_hint == 400 and err.param == "model" and err.code == "model_not_found"
    for name in ("sonnet", "opus", "haiku", "gpt-4o", "my-model"):
        assert name in err.message
    assert "claude-..." in err.message


def test_model_names_lists_aliases_map_keys_and_extras_once() -> None:
    names = model_names(MAPPED)
    assert names[: len(CLI_MODEL_ALIASES)] == CLI_MODEL_ALIASES
    assert {"gpt-4o", "fast", "my-model"} <= set(names) and len(names) == len(set(names))


def test_resolve_model_is_what_the_plan_passes() -> None:
    request = structure_request(json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]}))
    assert resolve_model(request, MAPPED) == "sonnet"


# ---- profiles: the -chat alias and the profile field ----------------------------------------


@pytest.mark.parametrize(("asked", "cli"), [
    ("sonnet-chat", "sonnet"), ("opus-chat", "opus"), ("sonnet[1m]-chat", "sonnet[1m]"),
    ("default-chat", "haiku"), ("gpt-4o-chat", "sonnet"), ("fast-chat", "haiku"),
    ("my-model-chat", "my-model"),
    ("claude-sonnet-4-5-20250929-chat", "claude-sonnet-4-5-20250929"),
])
def test_a_chat_alias_is_its_base_model_with_the_lean_profile(asked: str, cli: str) -> None:
    request = structure_request(json.dumps({"model": asked, "messages": [{"role": "user", "content": "q"}]}))
    assert resolve_model(request, MAPPED) == cli
    assert resolve_profile(request, MAPPED) == "lean"
    assert values(plan(MAPPED, model=asked).argv, "--model") == [cli]


def test_an_operator_name_ending_in_chat_is_no_alias() -> None:
    opts = PlanOptions(executable="claude", cwd="/ws", model_map={"team-chat": "opus"},
                       models=("vendor-chat",))
    for asked, cli in (("team-chat", "opus"), ("vendor-chat", "vendor-chat")):
        request = structure_request(json.dumps({"model": asked, "messages": [{"role": "user", "content": "q"}]}))
        assert resolve_model(request, opts) == cli and resolve_profile(request, opts) == "full"


@pytest.mark.parametrize("asked", ["gpt-5-chat", "-chat", "chat"])
def test_an_unknown_base_with_chat_is_a_400_naming_it(asked: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        plan(MAPPED, model=asked)
    err = info.value
    assert err.status_hint == 400 and err.param == "model" and err.code == "model_not_found"
    assert f"'{asked}'" in err.message and "-chat" in err.message
    if asked == "gpt-5-chat":
        assert "'gpt-5' is no model name" in err.message


@pytest.mark.parametrize(("model", "field", "setting", "expect"), [
    ("sonnet", None, "full", "full"), ("sonnet", None, "lean", "lean"),
    ("sonnet-chat", None, "full", "lean"),
    ("sonnet-chat", "full", "full", "full"),  # the explicit field wins over the alias
    ("sonnet", "lean", "full", "lean"), ("sonnet", "full", "lean", "full"),
])
def test_the_profile_field_then_the_alias_then_the_setting(
        model: str, field: str | None, setting: str, expect: str) -> None:
    opts = PlanOptions(executable="claude", cwd="/ws", profile=setting)
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "q"}]}
    if field is not None:
        body["profile"] = field
    assert resolve_profile(structure_request(json.dumps(body)), opts) == expect


def test_an_unknown_profile_is_a_400() -> None:
    with pytest.raises(InvalidRequestError, match="full, lean") as info:
        plan(profile="tiny")
    assert info.value.param == "profile"


def test_model_names_list_a_few_chat_aliases() -> None:
    names = model_names(MAPPED)
    assert {"fast-chat", "sonnet-chat", "opus-chat", "haiku-chat"} <= set(names)
    assert "gpt-4o-chat" not in names and len(names) == len(set(names))


# ---- per-request narrowing ----------------------------------------------------------------


@pytest.mark.parametrize(("server", "asked", "expect"), [
    (0, None, None), (0, 3, "3"), (5, None, "5"), (5, 2, "2"), (5, 9, "5"),
])
def test_max_turns_may_only_lower_the_server_limit(server: int, asked: int | None,
                                                   expect: str | None) -> None:
    opts = PlanOptions(executable="claude", cwd="/ws", max_turns=server)
    fields = {} if asked is None else {"max_turns": asked}
    assert values(plan(opts, **fields).argv, "--max-turns") == ([expect] if expect else [])


def test_max_turns_below_one_is_a_400() -> None:
    with pytest.raises(InvalidRequestError, match="at least 1") as info:
        plan(max_turns=0)
    assert info.value.param == "max_turns"


def test_enabled_tools_narrow_the_default_set() -> None:
    assert values(plan(enabled_tools=["Read", "Bash", "Read"]).argv, "--tools") == ["Read,Bash"]
    assert values(plan(enabled_tools=[]).argv, "--tools") == [""]
    # Glob is a real CLI tool, but not in the default set: enabling it would widen.
    with pytest.raises(InvalidRequestError, match="not offered: 'Glob'") as info:
        plan(enabled_tools=["Read", "Glob"])
    assert info.value.param == "enabled_tools"


def test_enabled_tools_narrow_a_configured_set() -> None:
    opts = PlanOptions(executable="claude", cwd="/ws", tools="Bash,Read")
    assert values(plan(opts).argv, "--tools") == ["Bash,Read"]
    assert values(plan(opts, enabled_tools=["Read"]).argv, "--tools") == ["Read"]
    with pytest.raises(InvalidRequestError, match="Offered: Bash, Read"):
        plan(opts, enabled_tools=["Write"])
    none = PlanOptions(executable="claude", cwd="/ws", tools="")
    with pytest.raises(InvalidRequestError, match="Offered: none"):
        plan(none, enabled_tools=["Read"])


def test_disabled_tools_add_to_the_server_list() -> None:
    opts = PlanOptions(executable="claude", cwd="/ws", tools="Bash,Read",
                       disallowed_tools=("WebFetch",))
    argv = plan(opts, disabled_tools=["Bash(rm *)", "mcp__mini__echo"]).argv
    assert values(argv, "--disallowedTools") == ["WebFetch", "Bash(rm *)", "mcp__mini__echo"]


def test_disabling_bash_in_the_default_set_does_not_bring_in_glob_and_grep() -> None:
    # The CLI replaces a disallowed Bash with Glob and Grep (reference §8.3).
    argv = plan(disabled_tools=["Bash"]).argv
    assert values(argv, "--disallowedTools") == ["Bash", "Glob", "Grep"]
    operator = PlanOptions(executable="claude", cwd="/ws", disallowed_tools=("Bash",))
    assert values(plan(operator, disabled_tools=["Write"]).argv,
                  "--disallowedTools") == ["Bash", "Write"]


@pytest.mark.parametrize("rule", [
    "--dangerously-skip-permissions", "-p", "", "Bash(rm *", "Read Write", "a\x00b",
])
def test_disabled_tools_cannot_smuggle_flags(rule: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        plan(disabled_tools=["Read", rule])
    assert info.value.param == "disabled_tools[1]"


@given(st.lists(st.sampled_from(sorted(DEFAULT_TOOLS)), max_size=6))
def test_narrowing_never_widens(enabled: list[str]) -> None:
    inv = plan(enabled_tools=enabled, disabled_tools=enabled[:1])
    (tools,) = values(inv.argv, "--tools") or [""]
    assert set(filter(None, tools.split(","))) <= DEFAULT_TOOLS
    assert "--allowedTools" not in inv.argv and "--permission-mode" in inv.argv
