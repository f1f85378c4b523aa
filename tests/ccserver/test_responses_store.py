"""Stored Responses API objects: written, read back, kept across a reopen, replaced by id."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ccserver.conversations.sqlite import SCHEMA_VERSION, SQLiteStore


async def test_responses_round_trip_and_survive_reopening(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    assert await store.get_response("resp_1") is None
    await store.put_response("resp_1", "conv_1", 1700000000.0, '{"id":"resp_1"}')
    await store.put_response("resp_2", "conv_1", 1700000001.0, '{"id":"resp_2"}')
    await store.put_response("resp_2", "conv_1", 1700000001.0, '{"id":"resp_2","v":2}')
    await store.close()
    reopened = SQLiteStore(tmp_path / "s.sqlite3")
    await reopened.open()
    assert await reopened.get_response("resp_1") == ("conv_1", '{"id":"resp_1"}')
    assert await reopened.get_response("resp_2") == ("conv_1", '{"id":"resp_2","v":2}')
    await reopened.close()
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
