"""ccserver.settings: layering, type conversion, validation messages, resolved paths."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest

from ccserver.settings import (
    ClaudeSettings,
    ServerSettings,
    Settings,
    SettingsError,
    load_settings,
    settings_table,
)
from ccserver.settings import load as settings_module
from ccserver.settings.sections import SECTIONS
from ccserver.settings.startup import cold_starts


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # load_settings looks for config/local.toml in the current directory.
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(
    environ: Mapping[str, str] | None = None,
    *,
    config: str | None = None,
    overrides: Mapping[str, object] | None = None,
    home: Path | None = None,
) -> Settings:
    env = {"HOME": str(home or Path.cwd() / "home"), **(environ or {})}
    return load_settings(config_path=config, environ=env, overrides=overrides or {})


def write_toml(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_defaults(tmp_path: Path) -> None:
    s = load(home=tmp_path)
    data_dir = str(tmp_path / ".local/share/ccserver")
    assert s.server == ServerSettings(data_dir=data_dir)
    assert s.claude == ClaudeSettings(workspace=data_dir + "/workspace")
    assert (s.server.host, s.server.port, s.server.max_body_bytes) == ("127.0.0.1", 8080, 10485760)
    assert s.claude.default_model == "sonnet"
    assert s.claude.permission_mode == "default"
    assert s.claude.extra_env == {}
    assert s.server.models == ()
    hash(s)  # frozen and hashable, although extra_env is a dict


def test_cold_starts_default_to_the_cores_this_process_may_use() -> None:
    assert load().claude.max_cold_starts == 0
    assert cold_starts(load(), cores=2) == 4
    assert cold_starts(load(), cores=0) == 1  # at least one, whatever the mask says
    assert cold_starts(load()) == 2 * len(os.sched_getaffinity(0))
    # Set, it is taken as is: more or fewer than the cores.
    assert cold_starts(load({"CLAUDE_CODE__CLAUDE__MAX_COLD_STARTS": "32"}), cores=2) == 32
    with pytest.raises(SettingsError):
        load({"CLAUDE_CODE__CLAUDE__MAX_COLD_STARTS": "-1"})


def test_data_dir_from_xdg_and_explicit_paths(tmp_path: Path) -> None:
    s = load({"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert s.server.data_dir == str(tmp_path / "xdg/ccserver")
    assert s.claude.workspace == str(tmp_path / "xdg/ccserver/workspace")
    # A relative $XDG_DATA_HOME is invalid per the spec and ignored.
    s = load({"XDG_DATA_HOME": "rel"}, home=tmp_path)
    assert s.server.data_dir == str(tmp_path / ".local/share/ccserver")
    s = load({"CLAUDE_CODE__SERVER__DATA_DIR": "~/state"}, home=tmp_path)
    assert s.server.data_dir == str(tmp_path / "state")
    assert s.claude.workspace == str(tmp_path / "state/workspace")
    s = load({"CLAUDE_CODE__CLAUDE__WORKSPACE": "ws"})
    assert s.claude.workspace == str(tmp_path / "ws")  # relative to the current directory


def test_toml_file(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "my.toml",
        """
        [server]
        port = 9000
        graceful_timeout_seconds = 5     # an int is fine for a float
        models = ["claude-opus-4-1"]
        [claude]
        system_prompt_mode = "replace"
        allowed_tools = ["Read", "Bash(git:*)"]
        extra_env = { FOO = "bar" }
        max_turns = 3
        """,
    )
    s = load(config=path)
    assert s.server.port == 9000
    assert s.server.graceful_timeout_seconds == 5.0
    assert isinstance(s.server.graceful_timeout_seconds, float)
    assert s.server.models == ("claude-opus-4-1",)
    assert s.claude.system_prompt_mode == "replace"
    assert s.claude.allowed_tools == ("Read", "Bash(git:*)")
    assert s.claude.extra_env == {"FOO": "bar"}
    assert s.claude.max_turns == 3


def test_default_config_file_is_config_local_toml(tmp_path: Path) -> None:
    write_toml(tmp_path / "config/local.toml", "[server]\nport = 9001\n")
    assert load().server.port == 9001
    # An explicit --config replaces it.
    assert load(config=write_toml(tmp_path / "other.toml", "")).server.port == 8080


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"nope\.toml"):
        load(config=str(tmp_path / "nope.toml"))
    with pytest.raises(SettingsError, match=r"bad\.toml"):
        load(config=write_toml(tmp_path / "bad.toml", "[server\n"))


def test_env_values_are_converted_to_the_field_type() -> None:
    s = load(
        {
            "CLAUDE_CODE__SERVER__PORT": "9100",
            "CLAUDE_CODE__SERVER__SSE_KEEPALIVE_SECONDS": "2.5",
            "CLAUDE_CODE__SERVER__MODELS": "claude-a, claude-b,",
            "CLAUDE_CODE__CLAUDE__ALLOWED_TOOLS": '["Bash(ls, cat)", "Read"]',
            "CLAUDE_CODE__CLAUDE__EXTRA_ENV": '{"A": "1", "B": "two"}',
            "CLAUDE_CODE__CLAUDE__COMMAND": "/opt/claude",
            "CLAUDE_CODE__CLAUDE__PERMISSION_MODE": "plan",
            "CLAUDE_CODE_MAX_RETRIES": "7",  # the CLI's own variable: not ours, ignored
        }
    )
    assert s.server.port == 9100
    assert s.server.sse_keepalive_seconds == 2.5
    assert s.server.models == ("claude-a", "claude-b")
    assert s.claude.allowed_tools == ("Bash(ls, cat)", "Read")  # JSON keeps the comma
    assert s.claude.extra_env == {"A": "1", "B": "two"}
    assert s.claude.command == "/opt/claude"
    assert s.claude.permission_mode == "plan"
    assert s.claude.max_retries == 2


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("no", False)],
)
def test_env_booleans(text: str, value: bool) -> None:
    # No setting is a bool today; the conversion is there for the ones that will be.
    assert settings_module._parse(text, bool) is value


def test_env_boolean_rejects_other_words() -> None:
    with pytest.raises(ValueError, match="true/false"):
        settings_module._parse("maybe", bool)


def test_precedence_flags_over_env_over_toml(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "c.toml", '[server]\nport = 1001\nhost = "0.0.0.0"\n')
    env = {"CLAUDE_CODE__SERVER__PORT": "1002"}
    assert load(config=path).server.port == 1001
    assert load(env, config=path).server.port == 1002
    s = load(env, config=path, overrides={"server.port": 1003, "server.host": None})
    assert s.server.port == 1003
    assert s.server.host == "0.0.0.0"  # a None override leaves the lower layers alone


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nprot = 1\n", "unknown setting server.prot"),
        ("[sever]\nport = 1\n", "unknown setting sever.port"),
        ("port = 1\n", "unknown setting port"),
        ("[server]\nport = 70000\n", "server.port: must be in 0..65535, got 70000"),
        ("[server]\nport = -1\n", "server.port: must be in 0..65535, got -1"),
        ('[server]\nport = "80"\n', "server.port: expected int, got '80'"),
        ("[server]\nport = 80.5\n", "server.port: expected int"),
        ("[server]\nport = true\n", "server.port: expected int, got True"),
        ('[server]\nhost = ""\n', "server.host: must not be empty"),
        ("[server]\nhost = 127\n", "server.host: expected str, got 127"),
        ('[server]\nmodels = "abc"\n', "server.models: expected a list of strings"),
        ("[server]\nmodels = [1]\n", "server.models: expected a list of strings"),
        ('[server]\nlog_level = "loud"\n', "server.log_level: must be one of debug, info"),
        ("[claude]\ntimeout_seconds = -1\n", "claude.timeout_seconds: must be > 0, got -1"),
        ("[claude]\nkill_grace_seconds = 0\n", "claude.kill_grace_seconds: must be > 0"),
        ("[claude]\nmax_concurrent_sessions = 0\n", "claude.max_concurrent_sessions: must be > 0"),
        ("[claude]\nmax_turns = -1\n", "claude.max_turns: must be >= 0, got -1"),
        ('[claude]\npermission_mode = "bypassPermissions"\n', "claude.permission_mode: must be"),
        ('[claude]\nsystem_prompt_mode = "prepend"\n', "claude.system_prompt_mode: must be"),
        ("[claude]\nextra_env = { A = 1 }\n", "claude.extra_env: expected a table of strings"),
        ('[claude]\nextra_env = { "A=B" = "1" }\n', "claude.extra_env: keys must be variable"),
    ],
)
def test_bad_toml_names_the_key(tmp_path: Path, toml: str, message: str) -> None:
    path = write_toml(tmp_path / "bad.toml", toml)
    with pytest.raises(SettingsError) as info:
        load(config=path)
    assert message in str(info.value)
    assert path in str(info.value)  # and says where the value came from


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CLAUDE_CODE__SERVER__PROT", "1", "unknown setting server.prot"),
        ("CLAUDE_CODE__PORT", "1", "unknown setting port"),
        ("CLAUDE_CODE__SERVER__PORT", "eighty", "server.port: expected an integer, got 'eighty'"),
        ("CLAUDE_CODE__CLAUDE__TIMEOUT_SECONDS", "soon", "claude.timeout_seconds: expected a"),
        ("CLAUDE_CODE__CLAUDE__TIMEOUT_SECONDS", "-1", "claude.timeout_seconds: must be > 0"),
        ("CLAUDE_CODE__CLAUDE__TIMEOUT_SECONDS", "nan", "claude.timeout_seconds: must be > 0"),
        ("CLAUDE_CODE__CLAUDE__EXTRA_ENV", "A=1", "claude.extra_env: expected a table"),
        ("CLAUDE_CODE__CLAUDE__EXTRA_ENV", "[1]", "claude.extra_env: expected a table of strings"),
        ("CLAUDE_CODE__CLAUDE__PERMISSION_MODE", "yolo", "claude.permission_mode: must be one"),
    ],
)
def test_bad_env_names_the_key(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load({name: value})
    assert message in str(info.value)
    assert name in str(info.value)


def test_bad_override_and_several_errors_at_once() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting server\.prot"):
        load(overrides={"server.prot": 1})
    with pytest.raises(SettingsError) as info:
        load({"CLAUDE_CODE__CLAUDE__MAX_TURNS": "-2"}, overrides={"server.port": 65536})
    assert "server.port: must be in 0..65535, got 65536 (from command line)" in str(info.value)
    assert "claude.max_turns: must be >= 0" in str(info.value)


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ValueError, match=r"port: must be in 0\.\.65535"):
        ServerSettings(port=-5)


def test_settings_table_covers_every_field_with_toml_defaults() -> None:
    rows = settings_table()
    keys = [r.key for r in rows]
    expected = [f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in attrs.fields(cls)]
    assert keys == expected and len(set(keys)) == len(keys) > 27
    defaults = {name: cls() for name, cls in SECTIONS.items()}
    for row in rows:
        section, name = row.key.split(".")
        assert row.env == f"CLAUDE_CODE__{section.upper()}__{name.upper()}"
        assert row.meaning
        # The default column is valid TOML for the field's default value.
        value = tomllib.loads(f"v = {row.default}")["v"]
        expect = getattr(defaults[section], name)
        assert value == (list(expect) if isinstance(expect, tuple) else expect)
    by_key = {r.key: r for r in rows}
    assert by_key["server.port"].default == "8080"
    assert by_key["claude.command"].env == "CLAUDE_CODE__CLAUDE__COMMAND"
    assert by_key["claude.extra_env"].default == "{}"
