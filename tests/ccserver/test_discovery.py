"""ccserver.proc.discovery: where the CLI is looked for, and probing stand-ins and the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

from ccserver.proc import discovery
from ccserver.proc.discovery import CLIInfo, find_cli, locate_cli, probe_cli
from ccserver.settings import ClaudeSettings, Settings

REAL_CLI = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "claude"

STANDIN = """#!/bin/sh
case "$1" in
  --version) echo "9.9.9 (Claude Code)" ;;
  auth) echo '{"loggedIn": false, "authMethod": "none", "apiProvider": "firstParty"}'; exit 1 ;;
  *) exit 64 ;;
esac
"""


def executable(path: Path, text: str = STANDIN, mode: int = 0o755) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def with_command(command: str) -> Settings:
    return Settings(claude=ClaudeSettings(command=command))


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, str]:
    """A configured CLI, a project-local one and one on PATH, all present."""
    return {
        "setting": executable(tmp_path / "configured" / "my-claude"),
        "project": executable(tmp_path / "project" / "node_modules" / ".bin" / "claude"),
        "path": executable(tmp_path / "bin" / "claude"),
    }


def test_order_setting_then_project_then_path(tmp_path: Path, layout: dict[str, str]) -> None:
    env = {"PATH": str(tmp_path / "bin")}
    project = tmp_path / "project"
    found = locate_cli(with_command(layout["setting"]), environ=env, project_root=project)
    assert (found.path, found.source) == (layout["setting"], "setting")
    found = locate_cli(Settings(), environ=env, project_root=project)
    assert (found.path, found.source) == (layout["project"], "project")
    found = locate_cli(Settings(), environ=env, project_root=tmp_path / "elsewhere")
    assert (found.path, found.source) == (layout["path"], "path")
    assert found.error is None
    assert find_cli(Settings(), environ=env, project_root=project) == layout["project"]


def test_configured_but_missing_does_not_fall_through(
    tmp_path: Path, layout: dict[str, str]
) -> None:
    env = {"PATH": str(tmp_path / "bin")}
    missing = str(tmp_path / "nowhere" / "claude")
    found = locate_cli(with_command(missing), environ=env, project_root=tmp_path / "project")
    assert found.path is None
    assert found.error is not None and missing in found.error
    assert find_cli(with_command(missing), environ=env, project_root=tmp_path / "project") is None
    # A file that is there but not executable is just as unusable.
    plain = executable(tmp_path / "plain", mode=0o644)
    assert locate_cli(with_command(plain), environ=env, project_root=tmp_path).path is None


def test_configured_bare_name_and_home_are_resolved(tmp_path: Path) -> None:
    on_path = executable(tmp_path / "bin" / "claude-nightly")
    env = {"PATH": f"/nonexistent:{tmp_path / 'bin'}", "HOME": str(tmp_path)}
    assert find_cli(with_command("claude-nightly"), environ=env, project_root=tmp_path) == on_path
    found = find_cli(with_command("~/bin/claude-nightly"), environ=env, project_root=tmp_path)
    assert found == on_path


def test_not_found_anywhere(tmp_path: Path) -> None:
    executable(tmp_path / "project" / "node_modules" / ".bin" / "claude", mode=0o644)
    found = locate_cli(Settings(), environ={"PATH": str(tmp_path)}, project_root=tmp_path)
    assert found.path is None and found.source is None
    assert found.error is not None and "claude.command" in found.error


def test_default_project_root_is_the_checkout() -> None:
    assert discovery.PROJECT_ROOT == REAL_CLI.parents[2]


async def test_probe_standin(tmp_path: Path) -> None:
    cli = executable(tmp_path / "claude")
    info = await probe_cli(cli, {"PATH": os.defpath})
    assert info == CLIInfo(
        path=cli, version="9.9.9", logged_in=False, auth_method="none", error=None
    )


async def test_probe_reports_failures_without_raising(tmp_path: Path) -> None:
    info = await probe_cli(str(tmp_path / "missing"), {})
    assert info.version is None and info.logged_in is None
    assert info.error is not None and "cannot run" in info.error

    garbled = STANDIN.replace("echo '{", "echo 'oops {")
    info = await probe_cli(executable(tmp_path / "garbled", garbled), {})
    assert info.version == "9.9.9" and info.logged_in is None
    assert info.error is not None and "auth status" in info.error

    broken = "#!/bin/sh\necho 'boom' >&2\nexit 3\n"
    info = await probe_cli(executable(tmp_path / "broken", broken), {})
    assert info.version is None
    assert info.error is not None and "exited with 3" in info.error and "boom" in info.error


async def test_probe_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "PROBE_TIMEOUT_SECONDS", 0.5)
    hang = executable(tmp_path / "hang", "#!/bin/sh\nexec sleep 60\n")
    info = await probe_cli(hang, {"PATH": os.defpath})
    assert info.version is None
    assert info.error is not None and "did not finish" in info.error


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    # The CLI keeps its state in $CLAUDE_CONFIG_DIR (and $HOME); keep it out of the real ones.
    return {"PATH": os.environ["PATH"], "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home), **extra}


async def test_probe_real_cli(tmp_path: Path) -> None:
    assert os.access(REAL_CLI, os.X_OK), "run `npm ci` (make setup) to install the pinned CLI"
    info = await probe_cli(str(REAL_CLI), isolated_env(tmp_path))
    assert info.version is not None and info.version.startswith("2.1.197")
    assert attrs.evolve(info, version=None) == CLIInfo(
        path=str(REAL_CLI), version=None, logged_in=False, auth_method="none", error=None
    )


async def test_probe_real_cli_with_api_key(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, ANTHROPIC_API_KEY="sk-ant-test-not-a-key")
    info = await probe_cli(str(REAL_CLI), env)
    assert (info.logged_in, info.auth_method, info.error) == (True, "api_key", None)
