"""Start-up checks of the file-access and MCP settings (ccserver.settings.startup, ccserver.settings.mcp)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ccserver.settings import ClaudeSettings, Settings
from ccserver.settings.mcp import McpConfigError, load_mcp
from ccserver.settings.sections import FileAccessSettings, McpSettings
from ccserver.settings.startup import FileAccessError, claude_options

SERVER = {"command": sys.executable, "args": ["mcp_server.py"]}


def mcp_settings(tmp_path: Path, config: Any, **mcp: Any) -> Settings:
    path = tmp_path / "mcp.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    return Settings(mcp=McpSettings(enabled=True, config_file=str(path), **mcp))


def test_mcp_off_by_default() -> None:
    setup = claude_options(Settings(), {}).mcp
    assert setup.config_files == () and setup.allowed_tools == ()


def test_a_good_config(tmp_path: Path) -> None:
    config = {"mcpServers": {"mini": SERVER, "web": {"type": "http", "url": "https://x.test/mcp"}}}
    setup = load_mcp(mcp_settings(tmp_path, config), {"PATH": "/usr/bin"})
    assert setup.config_files == (str(tmp_path / "mcp.json"),)
    assert setup.servers == ("mini", "web")
    assert setup.allowed_tools == ("mcp__mini", "mcp__web")
    quiet = load_mcp(mcp_settings(tmp_path, config, allow_tools=False), {})
    assert quiet.allowed_tools == ()


@pytest.mark.parametrize(("config", "message"), [
    ("{not json", "cannot be read as JSON"),
    ({"servers": {}}, 'must be {"mcpServers"'),
    ({"mcpServers": []}, 'must be {"mcpServers"'),
    ({"mcpServers": {"a.b": SERVER}}, "server 'a.b': names may hold only"),
    ({"mcpServers": {"x": "python"}}, "server 'x': must be an object"),
    ({"mcpServers": {"x": {"args": []}}}, 'needs a "command" string'),
    ({"mcpServers": {"x": {"command": "no-such-command-4711"}}}, "is not on PATH"),
    ({"mcpServers": {"x": {**SERVER, "args": "a b"}}}, '"args" must be a list of strings'),
    ({"mcpServers": {"x": {**SERVER, "env": {"A": 1}}}}, '"env" must be an object of strings'),
    ({"mcpServers": {"x": {"type": "sse", "url": "ftp://x"}}}, 'needs a "url" starting http://'),
    ({"mcpServers": {"x": {"type": "carrier-pigeon"}}}, "type must be stdio, sse, http or ws"),
])
def test_bad_configs_name_the_problem(tmp_path: Path, config: Any, message: str) -> None:
    with pytest.raises(McpConfigError, match=r"MCP config .*mcp\.json") as info:
        load_mcp(mcp_settings(tmp_path, config), {"PATH": "/usr/bin"})
    assert message in str(info.value)


def test_missing_and_unset_files(tmp_path: Path) -> None:
    with pytest.raises(McpConfigError, match="config_file is empty"):
        load_mcp(Settings(mcp=McpSettings(enabled=True)), {})
    missing = Settings(mcp=McpSettings(enabled=True, config_file=str(tmp_path / "none.json")))
    with pytest.raises(McpConfigError, match=r"none\.json does not exist"):
        load_mcp(missing, {})


def test_not_strict_adds_the_cli_user_config(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / ".claude.json").write_text(json.dumps(
        {"numStartups": 3, "mcpServers": {"usr": SERVER, "mini": SERVER}}))
    settings = mcp_settings(tmp_path, {"mcpServers": {"mini": SERVER}}, strict=False)
    settings = Settings(mcp=settings.mcp, claude=ClaudeSettings(extra_env={"CLAUDE_CONFIG_DIR": str(cfg)}))
    setup = claude_options(settings, {"HOME": str(tmp_path / "home")}).mcp
    assert setup.config_files == (str(tmp_path / "mcp.json"), str(cfg / ".claude.json"))
    assert setup.servers == ("mini", "usr")
    # Strict (the default) ignores it; a user config without servers adds nothing.
    strict = Settings(mcp=McpSettings(enabled=True, config_file=settings.mcp.config_file))
    assert len(claude_options(strict, {"CLAUDE_CONFIG_DIR": str(cfg)}).mcp.config_files) == 1
    (cfg / ".claude.json").write_text("{}")
    assert claude_options(settings, {}).mcp.config_files == (str(tmp_path / "mcp.json"),)


def test_additional_dirs_must_exist_and_are_resolved(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    ok = Settings(file_access=FileAccessSettings(additional_dirs=(str(tmp_path / "link"),)))
    assert claude_options(ok, {}).add_dirs == (str(real),)
    bad = Settings(file_access=FileAccessSettings(additional_dirs=(str(tmp_path / "nope"),)))
    with pytest.raises(FileAccessError, match=r"additional_dirs: '.*nope' is not a directory"):
        claude_options(bad, {})


def test_workspace_context_decides_the_setting_sources() -> None:
    assert claude_options(Settings(), {}).setting_sources == "user"
    on = Settings(file_access=FileAccessSettings(workspace_context=True))
    assert claude_options(on, {}).setting_sources == ""
