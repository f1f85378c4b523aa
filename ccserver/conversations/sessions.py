"""The CLI's session files on disk: where they live, seeding, rolling back, removing.

A session's transcript is ``<config dir>/projects/<munged cwd>/<session id>.jsonl``
(reference §5.1). The gateway only ever touches the files of sessions it created.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import trio

from ccproto import HistoryMessage, munge_cwd, seed_transcript, seedable, tool_result_entries

__all__ = ["SessionFiles"]


class SessionFiles:
    """Session files under one CLI config dir (``CLAUDE_CONFIG_DIR`` or ``~/.claude``)."""

    def __init__(self, cli_env: Mapping[str, str]) -> None:
        configured = cli_env.get("CLAUDE_CONFIG_DIR")
        home = cli_env.get("HOME") or str(Path.home())
        self.config_dir = Path(configured) if configured else Path(home) / ".claude"

    def transcript(self, cwd: str, session_id: str) -> Path:
        return self.config_dir / "projects" / munge_cwd(cwd) / f"{session_id}.jsonl"

    async def write(self, cwd: str, session_id: str, data: bytes) -> None:
        """Create the transcript with ``data`` (a seeded history)."""
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

    async def seed(self, cwd: str, session_id: str, earlier: tuple[HistoryMessage, ...], *,
                   version: str, model: str, now: float) -> bool:
        """Write a new session's ``earlier`` turns as its transcript, for the CLI to resume
        (reference §5.3). False, writing nothing, for a history that cannot be written that
        way (images, an assistant turn first): the caller quotes it in the prompt instead."""
        pairs = seedable(earlier)
        if not pairs:
            return False
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        transcript = seed_transcript(
            pairs, session_id=session_id, cwd=cwd, version=version, model=model,
            timestamp=stamp.replace("+00:00", "Z"),
            uuids=iter(lambda: str(uuid.uuid4()), None),
        )
        await self.write(cwd, session_id, transcript)
        return True

    async def answer_calls(self, cwd: str, session_id: str, results: Mapping[str, str], *,
                           version: str, now: float) -> bool:
        """Write the client's tool ``results`` into the session after the calls its last
        message made (`tool_result_entries`), for a CLI that resumes it to go on with the
        turn. False, writing nothing, when they do not answer exactly those calls.

        No CLI may be writing the session (as for `roll_back`): the one that held the calls
        is gone.
        """
        path = self.transcript(cwd, session_id)
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")

        def append() -> bool:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return False
            lines = tool_result_entries(
                data, results, session_id=session_id, cwd=cwd, version=version,
                timestamp=stamp.replace("+00:00", "Z"),
                uuids=iter(lambda: str(uuid.uuid4()), None))
            if lines is None:
                return False
            with path.open("ab") as f:
                if data and not data.endswith(b"\n"):
                    f.write(b"\n")
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
            return True

        return await trio.to_thread.run_sync(append)

    async def exists(self, cwd: str, session_id: str) -> bool:
        return await trio.to_thread.run_sync(self.transcript(cwd, session_id).exists)

    async def roll_back(self, cwd: str, session_id: str, good_turns: int) -> None:
        """Cut the transcript back to its first ``good_turns`` prompts (the CLI must be dead).

        A failed turn leaves its prompt in the transcript, and the CLI would glue it to the
        next prompt (reference §6.2); a server killed mid-turn leaves half a turn. Each
        prompt the CLI reads from stdin opens with a ``queue-operation`` ``enqueue`` line,
        so the cut goes before the enqueue of prompt ``good_turns + 1``. Counting, not a
        remembered length, because the CLI writes its lines a little after its result.
        A transcript left empty is removed: the session never happened.

        No CLI may be writing it: the CLI appends by path (``appendFile(sessionFile)``),
        so replacing the file would not fence a late writer off, only ordering does. Our
        own runs are dead (or stay bound and complete) when a turn settles, and a dead
        gateway's were killed at start-up, before any roll-back (`ccserver.proc.guard`).
        """
        path = self.transcript(cwd, session_id)

        def cut() -> None:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return
            offset, seen = 0, 0
            for line in data.splitlines(keepends=True):
                if b'"queue-operation"' in line and b'"enqueue"' in line:
                    seen += 1
                    if seen > good_turns:
                        break
                offset += len(line)
            else:
                return  # nothing after the good turns
            if offset == 0:
                path.unlink()
            else:
                os.truncate(path, offset)

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
