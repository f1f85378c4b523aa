"""The CLI's session files on disk: where they live, seeding, rolling back, removing.

A session's transcript is ``<config dir>/projects/<munged cwd>/<session id>.jsonl``
(reference §5.1). The gateway only ever touches the files of sessions it created.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import trio

from ccproto import munge_cwd

__all__ = ["SessionFiles"]


class SessionFiles:
    """Session files under one CLI config dir (``CLAUDE_CONFIG_DIR`` or ``~/.claude``)."""

    def __init__(self, cli_env: Mapping[str, str]) -> None:
        configured = cli_env.get("CLAUDE_CONFIG_DIR")
        home = cli_env.get("HOME") or str(Path.home())
        self.config_dir = Path(configured) if configured else Path(home) / ".claude"

    def transcript(self, cwd: str, session_id: str) -> Path:
        return self.config_dir / "projects" / munge_cwd(cwd) / f"{session_id}.jsonl"

    async def write(self, cwd: str, session_id: str, data: bytes) -> int:
        """Create the transcript with ``data`` (a seeded history); returns its length."""
        path = self.transcript(cwd, session_id)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".seed")
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)

        await trio.to_thread.run_sync(write)
        return len(data)

    async def size(self, cwd: str, session_id: str) -> int | None:
        path = self.transcript(cwd, session_id)
        try:
            return (await trio.to_thread.run_sync(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def roll_back(self, cwd: str, session_id: str, good_bytes: int) -> None:
        """Cut the transcript back to its last good turn (0: remove it; < 0: unknown).

        A failed turn leaves its prompt in the transcript, and the CLI would glue it to the
        next prompt (reference §6.2); a server killed mid-turn leaves half a turn.
        """
        path = self.transcript(cwd, session_id)
        if good_bytes < 0:
            return

        def cut() -> None:
            try:
                if good_bytes == 0:
                    path.unlink()
                elif path.stat().st_size > good_bytes:
                    os.truncate(path, good_bytes)
            except FileNotFoundError:
                pass

        await trio.to_thread.run_sync(cut)

    async def remove(self, cwd: str, session_id: str, workspace: Path | None) -> None:
        """Delete the session's files, and ``workspace`` (its own working directory)."""
        transcript = self.transcript(cwd, session_id)
        env_dir = self.config_dir / "session-env" / session_id

        def remove() -> None:
            transcript.unlink(missing_ok=True)
            shutil.rmtree(env_dir, ignore_errors=True)
            if workspace is not None:
                shutil.rmtree(workspace, ignore_errors=True)

        await trio.to_thread.run_sync(remove)
