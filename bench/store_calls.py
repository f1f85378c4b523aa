"""One call of each conversation-store method: Redis (through the trio-asyncio link) vs
SQLite, on this machine.

Redis is a local ``redis-server`` started for the run (append-only file, ``appendfsync
always``, as the tests run it), reached on loopback through `RedisLink`; SQLite is a file
in a temporary directory (WAL, synchronous=FULL). Each method runs ``calls`` times after a
warm-up, one call at a time, on a store holding 200 conversations; the table gives the
median and the 90th percentile of one call, in milliseconds.

Usage: .venv/bin/python -m bench.store_calls [calls]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from bench.harness import Report, arg
from ccserver.cluster.link import RedisLink
from ccserver.conversations.redis_store import RedisStore
from ccserver.conversations.sqlite import SQLiteStore
from ccserver.conversations.store import Conversation, ConversationStore, StoredMessage
from tests.support.redis import running_redis

__all__ = ["main", "run"]

BODY = '{"id":"resp","output":"' + "x" * 2000 + '"}'


def conversation(n: int, *, at: float = 1.7e9) -> Conversation:
    return Conversation(id=f"conv_{n:06d}", session_id=f"session-{n}", cwd=f"/work/conv_{n}",
                        model="claude-sonnet", system_prompt="You are terse. " * 20,
                        metadata={"user": "bench"}, created_at=at + n, updated_at=at + n,
                        turns=1, fingerprint=f"fp{n}", started=True)


def turn(n: int) -> list[StoredMessage]:
    return [StoredMessage(role="user", parts=(("text", f"question {n} " * 20),),
                          created_at=1.7e9),
            StoredMessage(role="assistant", parts=(("text", f"answer {n} " * 40),),
                          created_at=1.7e9)]


async def measure(store: ConversationStore, calls: int) -> dict[str, list[float]]:
    for n in range(200):
        await store.add_turn(conversation(n), turn(n) * 5)
    times: dict[str, list[float]] = {}
    counter = iter(range(10_000, 10**9))

    async def timed(name: str, call: Callable[..., Awaitable[object]], *args: Any) -> None:
        start = time.perf_counter()
        await call(*args)
        times.setdefault(name, []).append((time.perf_counter() - start) * 1000)

    c = conversation(7)
    for i in range(calls + 20):  # the first 20 warm up and are dropped
        n = next(counter)
        new = conversation(n)
        await timed("put", store.put, attrs.evolve(c, turns=i))
        await timed("get", store.get, c.id)
        await timed("find", store.find, "fp42")
        await timed("page (20)", lambda: store.page(limit=20, after="conv_000150"))
        await timed("expired (none)", store.expired, 1.0)
        await timed("messages (10)", store.messages, "conv_000042")
        await timed("get_counted", store.get_counted, "conv_000042")
        await timed("add_turn (new, 2 msgs)", store.add_turn, new, turn(n))
        await timed("add_turn (next, 2 msgs)", store.add_turn, attrs.evolve(new, turns=2),
                    turn(n))
        await timed("put_response (2 KB)", store.put_response, f"resp_{n}", new.id, 1.7e9,
                    BODY)
        await timed("get_response", store.get_response, f"resp_{n}")
        await timed("delete", store.delete, new.id)
    return {name: values[20:] for name, values in times.items()}


async def both(calls: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp) / "redis") as server:
        sqlite = SQLiteStore(Path(tmp) / "db.sqlite3")
        await sqlite.open()
        local = await measure(sqlite, calls)
        await sqlite.close()
        link = RedisLink(server.url, timeout=2)
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            shared = RedisStore(link)
            await shared.open()
            remote = await measure(shared, calls)
            nursery.cancel_scope.cancel()
    return remote, local


def p(values: Sequence[float], q: int) -> str:
    return f"{statistics.quantiles(values, n=100)[q - 1]:.2f}"


def run(argv: Sequence[str] = ()) -> Report:
    calls = arg(argv, 0, 500)
    remote, local = trio.run(both, calls)
    report = Report(
        title="Conversation store: one call of each method",
        command=f".venv/bin/python -m bench.store_calls {calls}",
        headline=f"Redis add_turn p50 {p(remote['add_turn (next, 2 msgs)'], 50)} ms "
                 f"(SQLite {p(local['add_turn (next, 2 msgs)'], 50)} ms); every Redis "
                 "method is one round trip",
        header=("method", "redis p50 ms", "redis p90 ms", "sqlite p50 ms", "sqlite p90 ms"))
    for name in remote:
        report.rows.append((name, p(remote[name], 50), p(remote[name], 90),
                            p(local[name], 50), p(local[name], 90)))
    report.notes.append(f"{calls} calls per method, one at a time, 200 conversations stored; "
                        "Redis with appendfsync always on loopback, SQLite WAL synchronous=FULL")
    return report


def main(argv: Sequence[str] = ()) -> None:
    print(run(argv).text())


if __name__ == "__main__":
    main(sys.argv[1:])
