"""The replay CLI (replay_cli.py beside this file) set up as an executable `claude`."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import attrs

__all__ = ["TRANSCRIPTS", "ReplayCLI", "replay_cli_in"]

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"
_SCRIPT = Path(__file__).resolve().with_name("replay_cli.py")


@attrs.frozen
class ReplayCLI:
    """Set ``command`` as claude.command and ``env`` as claude.extra_env; every run replays
    whatever `play` last chose."""

    command: str
    env: dict[str, str]
    transcript: Path
    stdin_log: Path

    def play(self, name: str) -> None:
        """Later runs replay tests/data/transcripts/<name>.jsonl."""
        shutil.copyfile(TRANSCRIPTS / f"{name}.jsonl", self.transcript)

    def runs(self) -> list[dict[str, Any]]:
        """Every run so far: its argv and the stdin line it was sent."""
        if not self.stdin_log.exists():
            return []
        return [json.loads(line) for line in self.stdin_log.read_text().splitlines()]


def replay_cli_in(home: Path) -> ReplayCLI:
    """A replay CLI with its files in ``home`` (created), replaying text_stream."""
    home.mkdir(parents=True, exist_ok=True)
    command = home / "claude"
    command.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} "
                       f"{shlex.quote(str(_SCRIPT))} \"$@\"\n")
    command.chmod(0o755)
    cli = ReplayCLI(
        command=str(command),
        env={"REPLAY_FILE": str(home / "transcript.jsonl"),
             "REPLAY_STDIN_LOG": str(home / "runs.jsonl"),
             "CLAUDE_CONFIG_DIR": str(home / "config")},
        transcript=home / "transcript.jsonl",
        stdin_log=home / "runs.jsonl",
    )
    cli.play("text_stream")
    return cli
