"""`ConversationStore` in one SQLite file: its schema, migrations and queries.

SQLite calls run in a worker thread, one at a time, so the Trio loop never waits on the
disk.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import trio

from .store import Conversation, StoredMessage

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

T = TypeVar("T")


# Each entry moves the schema one version up; PRAGMA user_version records how far it is.
_MIGRATIONS = (
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY, session_id TEXT NOT NULL, cwd TEXT NOT NULL, model TEXT,
        system_prompt TEXT, metadata TEXT NOT NULL, created_at REAL NOT NULL,
        updated_at REAL NOT NULL, turns INTEGER NOT NULL, fingerprint TEXT,
        started INTEGER NOT NULL
    );
    CREATE INDEX conversations_fingerprint ON conversations (fingerprint);
    CREATE INDEX conversations_created ON conversations (created_at);
    CREATE INDEX conversations_updated ON conversations (updated_at);
    CREATE TABLE messages (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, role TEXT NOT NULL, parts TEXT NOT NULL,
        created_at REAL NOT NULL, PRIMARY KEY (conversation_id, seq)
    );
    """,
    # Responses API objects, for GET /v1/responses/{id} and previous_response_id; they go
    # when their conversation is deleted or expires (the session they continue is gone).
    """
    CREATE TABLE responses (
        id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, created_at REAL NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX responses_created ON responses (created_at);
    CREATE INDEX responses_conversation ON responses (conversation_id);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
_COLUMNS = ("id", "session_id", "cwd", "model", "system_prompt", "metadata", "created_at",
            "updated_at", "turns", "fingerprint", "started")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM conversations"
# An upsert, not INSERT OR REPLACE: a replace deletes the row, and the delete cascades to
# the conversation's messages.
_UPSERT = (
    f"INSERT INTO conversations VALUES ({', '.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _COLUMNS[1:])}"
)


def _row(c: Conversation) -> tuple[Any, ...]:
    return (c.id, c.session_id, c.cwd, c.model, c.system_prompt, json.dumps(c.metadata),
            c.created_at, c.updated_at, c.turns, c.fingerprint, int(c.started))


def _conversation(row: Sequence[Any]) -> Conversation:
    fields = dict(zip(_COLUMNS, row, strict=True))
    fields["metadata"] = json.loads(fields["metadata"])
    fields["started"] = bool(fields["started"])
    return Conversation(**fields)


class SQLiteStore:
    """`ConversationStore` in one SQLite file (WAL, synchronous=FULL: durable on commit)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._limiter = trio.CapacityLimiter(1)  # one connection, one statement at a time

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await self._run(self._connect)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} has schema version {version}; this server knows up to "
                f"{SCHEMA_VERSION}. Use a newer server or another server.data_dir."
            )
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        return db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _execute(self, sql: str, *params: Any) -> list[Any]:
        assert self._db is not None, "SQLiteStore.open() was not called"
        return self._db.execute(sql, params).fetchall()

    async def put(self, conversation: Conversation) -> None:
        await self._run(self._execute, _UPSERT, *_row(conversation))

    async def get(self, conversation_id: str) -> Conversation | None:
        rows = await self._run(self._execute, f"{_SELECT} WHERE id = ?", conversation_id)
        return _conversation(rows[0]) if rows else None

    async def find(self, fingerprint: str) -> Conversation | None:
        # The newest of equal histories: two clients may share an opening.
        rows = await self._run(
            self._execute,
            f"{_SELECT} WHERE fingerprint = ? ORDER BY updated_at DESC LIMIT 1", fingerprint,
        )
        return _conversation(rows[0]) if rows else None

    async def page(self, *, limit: int, after: str | None) -> tuple[list[Conversation], bool]:
        """Newest first; ``after`` is the last id of the previous page."""

        def query() -> list[Any]:
            if after is None:
                return self._execute(
                    f"{_SELECT} ORDER BY created_at DESC, id DESC LIMIT ?", limit + 1)
            return self._execute(
                f"{_SELECT} WHERE (created_at, id) < "
                "(SELECT created_at, id FROM conversations WHERE id = ?) "
                "ORDER BY created_at DESC, id DESC LIMIT ?", after, limit + 1)

        rows = await self._run(query)
        return [_conversation(r) for r in rows[:limit]], len(rows) > limit

    async def expired(self, before: float) -> list[Conversation]:
        rows = await self._run(self._execute, f"{_SELECT} WHERE updated_at < ?", before)
        return [_conversation(r) for r in rows]

    async def messages(self, conversation_id: str) -> list[StoredMessage]:
        rows = await self._run(
            self._execute,
            "SELECT role, parts, created_at FROM messages WHERE conversation_id = ? "
            "ORDER BY seq", conversation_id,
        )
        return [StoredMessage(role=role, parts=tuple(tuple(p) for p in json.loads(parts)),
                              created_at=at) for role, parts, at in rows]

    async def get_counted(self, conversation_id: str) -> tuple[Conversation | None, int]:
        """The conversation and how many messages it holds, in one trip to the worker
        thread."""

        def read() -> tuple[list[Any], int]:
            rows = self._execute(f"{_SELECT} WHERE id = ?", conversation_id)
            (count,) = self._execute(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ?", conversation_id)[0]
            return rows, count

        rows, count = await self._run(read)
        return (_conversation(rows[0]) if rows else None), count

    def counted_read(self, conversation_id: str) -> None:
        return None  # no shared lock to read along with

    async def add_turn(
        self, conversation: Conversation, messages: Sequence[StoredMessage]
    ) -> None:
        """Store the conversation's new state and its new messages in one transaction."""

        def write() -> None:
            assert self._db is not None
            with self._db:  # BEGIN ... COMMIT, or ROLLBACK on error
                self._db.execute("BEGIN")
                self._db.execute(_UPSERT, _row(conversation))
                (seq,) = self._db.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?",
                    (conversation.id,)).fetchone()
                self._db.executemany(
                    "INSERT INTO messages VALUES (?, ?, ?, ?, ?)",
                    [(conversation.id, seq + n, m.role, json.dumps(m.parts), m.created_at)
                     for n, m in enumerate(messages, start=1)],
                )

        await self._run(write)

    async def delete(self, conversation_id: str) -> bool:
        def remove() -> bool:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN")
                for table in ("messages", "responses"):  # a response without its session
                    self._db.execute(f"DELETE FROM {table} WHERE conversation_id = ?",
                                     (conversation_id,))
                cursor = self._db.execute("DELETE FROM conversations WHERE id = ?",
                                          (conversation_id,))
                return cursor.rowcount > 0

        return await self._run(remove)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._run(db.close)

    async def put_response(self, response_id: str, conversation_id: str, created_at: float,
                           body: str) -> None:
        """Store a Responses API object (JSON text) and the conversation it belongs to."""
        await self._run(self._execute, "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                        response_id, conversation_id, created_at, body)

    async def get_response(self, response_id: str) -> tuple[str, str] | None:
        """(conversation id, body) of a stored response, or None."""
        rows = await self._run(
            self._execute, "SELECT conversation_id, body FROM responses WHERE id = ?",
            response_id)
        return (rows[0][0], rows[0][1]) if rows else None
