"""Two gateways sharing Redis vs one gateway with SQLite: throughput, latency, and the time
a turn spends in the conversation store.

Part 1, end to end, the same load on three set-ups: one gateway with the SQLite store; two
gateways sharing one ``redis-server`` (started for the run: append-only file, ``appendfsync
always``, loopback), each with its own CLI config dir and data dir and the same workspace
path, as in tests/e2e/test_cluster_e2e.py; once with every turn of a conversation on the
other gateway than the turn before (no affinity, the worst case: the transcript travels and
the CLI is started again with ``--resume`` every turn), once with each conversation staying
on one gateway (a load balancer sticky on ``x-conversation-id``). ``conversations`` x
``turns`` non-streaming chat completions (`THREADS` client threads, each taking the next
conversation and running its turns one after another, the id in ``x-conversation-id``).
``claude.max_concurrent_sessions`` is sized so that no conversation's process is retired
for room during the run. The first turns of all conversations run first (a warm pool
process or a cold start each); the gateways then settle (pool refilled, 3 s) and turns
2..T, what the store is for, are timed for throughput and latency. For moved turns, how
long each waited for the other gateway to give the conversation's lock back is taken from
Redis's keyspace notifications; the gateways' and redis-server's CPU from /proc.

Part 2, in process, the store's own cost per turn: the turn's bookkeeping as the gateway
runs it (`Conversations.claim_turn` around `Records.complete`: the lock taken with the
record and its message count, bring, add_turn, release), each store method, lock and the
transcript's download and write timed, on the same ``redis-server`` and on a SQLite file
(WAL, synchronous=FULL) in the same temporary directory. The CLI's part is played by
appending one turn of a real transcript from part 1 to the session file (not timed). Modes
interleave per conversation; each turn starts after the turn before has uploaded its
transcript (off the response's path, it keeps the shared lock until done), so every Redis
turn takes the shared lock with a round trip: the dearer case.

Goal (issue 13): the shared store adds <= 2 ms per turn at p50 on loopback.

Usage: .venv/bin/python -m bench.cluster [conversations] [turns]
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import json
import math
import os
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import attrs
import httpx
import redis
import trio

from bench.harness import Report, Stack, arg, fake_prompt, percentile, settle, stack
from ccproto import structure_request
from ccserver.cluster import KEY_PREFIX
from ccserver.cluster.link import RedisLink
from ccserver.cluster.locks import Reads, SharedLocks
from ccserver.conversations.locks import ConversationLocks
from ccserver.conversations.records import Records
from ccserver.conversations.redis_store import RedisStore
from ccserver.conversations.registry import Conversations
from ccserver.conversations.sessions import SessionFiles
from ccserver.conversations.sqlite import SQLiteStore
from ccserver.conversations.store import Conversation, ConversationStore
from ccserver.conversations.transcripts import TranscriptShare
from ccserver.settings.conversation import ConversationSettings
from tests.support.redis import RedisServer, running_redis

__all__ = ["main", "run"]

THREADS = 4
SETUPS = ("sqlite", "moved", "affinity")
LABELS = {"sqlite": "SQLite, 1 gateway", "moved": "Redis, 2 gateways, every turn moves",
          "affinity": "Redis, 2 gateways, affinity"}
#: Part 2: conversations per mode (the first WARM dropped).
REPLAY, WARM = 40, 5
MODEL = "claude-sonnet-4-5"


def prompt(i: int, k: int) -> str:
    return fake_prompt({"text": f"Answer {k} of conversation {i}."}, f"c{i} t{k}: go on.")


# ---- part 1: end to end ----------------------------------------------------------------------


@attrs.define
class Turn:
    conversation: int
    index: int  # 1-based
    seconds: float
    error: str = ""
    conversation_id: str = ""
    start: float = math.nan  # time.perf_counter() when sent


@attrs.define
class Load:
    """One set-up's run: its conversations' later turns (2..T), after their first turns."""

    turns: list[Turn]
    wall: float
    stats: list[dict[str, Any]]
    first: list[Turn]
    first_wall: float
    #: CPU seconds during turns 2..T: the gateways' own (not their CLIs'), redis-server's.
    gateway_cpu: float
    redis_cpu: float
    #: Messages in the upstream request of each conversation's last turn.
    history: list[int] = attrs.Factory(list)
    #: Per later turn: seconds it waited for the turn before to give the shared lock back
    #: (> 0 only when that turn ran on the other gateway).
    handover: list[float] = attrs.Factory(list)
    #: Per turn: seconds from its answer to its shared lock's release (the upload).
    held: list[float] = attrs.Factory(list)

    def latencies(self, first: bool = False) -> list[float]:
        return sorted(t.seconds for t in (self.first if first else self.turns) if not t.error)

    def errors(self) -> int:
        return sum(1 for t in self.turns + self.first if t.error)

    def counter(self, section: str, key: str) -> int:
        return sum(int(s.get(section, {}).get(key, 0)) for s in self.stats)


def drive(urls: Sequence[str], ids: dict[int, str], turns: range,
          route: Callable[[int, int], int]) -> tuple[list[Turn], float]:
    """Turns ``turns`` of every conversation in ``ids`` (index -> id, "" before its first
    turn, which fills it in) from `THREADS` threads, each taking the next conversation;
    turn k of conversation i goes to ``urls[route(i, k)]``."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in ids:
        todo.put(i)
    done: list[Turn] = []
    lock = threading.Lock()

    def worker() -> None:
        clients = [httpx.Client(base_url=url, timeout=180) for url in urls]
        try:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                for k in turns:
                    turn = one_turn(clients[route(i, k)], i, k, ids[i])
                    with lock:
                        done.append(turn)
                    if turn.error:
                        break
                    ids[i] = turn.conversation_id
        finally:
            for client in clients:
                client.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done, time.perf_counter() - t0


def one_turn(client: httpx.Client, i: int, k: int, conversation: str) -> Turn:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": prompt(i, k)}]}
    headers = {"x-conversation-id": conversation} if conversation else {}
    t0 = time.perf_counter()
    try:
        response = client.post("/chat/completions", json=body, headers=headers)
        elapsed = time.perf_counter() - t0
        if response.status_code != 200:
            return Turn(i, k, elapsed, f"HTTP {response.status_code}: {response.text[:200]}")
        answer = response.json()
    except httpx.HTTPError as exc:
        return Turn(i, k, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
    if answer["choices"][0]["message"]["content"] != f"Answer {k} of conversation {i}.":
        return Turn(i, k, elapsed, f"unexpected answer {answer['choices'][0]['message']!r}")
    return Turn(i, k, elapsed, conversation_id=str(answer["conversation_id"]), start=t0)


def load(st: Stack, setup: str, server: RedisServer, conversations: int, turns: int) -> Load:
    """One set-up's gateways started, settled, loaded, read and stopped."""
    redis_url = server.url
    cap = conversations + 6  # every conversation's process and the pool: none retired
    settings: dict[str, object] = {"claude.max_concurrent_sessions": cap,
                                   "claude.max_queued_requests": 64}
    names = [setup]
    if setup != "sqlite":
        names = [f"{setup}-a", f"{setup}-b"]
        settings |= {"conversation.store_url": redis_url,
                     "claude.workspace": str(st.tmp / f"ws-{setup}")}
    route: Callable[[int, int], int] = {
        "sqlite": lambda i, k: 0,
        "moved": lambda i, k: (i + k) % 2,
        "affinity": lambda i, k: i % 2,
    }[setup]
    ids = dict.fromkeys(range(conversations), "")
    with contextlib.ExitStack() as running:
        gateways = [running.enter_context(st.gateway(name, settings)) for name in names]
        urls = [gw.v1 for gw, _ in gateways]
        for _, client in gateways:
            settle(client)
        first, first_wall = drive(urls, ids, range(1, 2), route)
        # The pool refilled (cold starts, ~1 CPU-s each) before the turns that continue.
        for _, client in gateways:
            settle(client)
        # Moved turns only: there every turn's lock goes back to Redis before the next.
        watch = running.enter_context(LockWatch.watching(redis_url)) if setup == "moved" \
            else None
        before = len(st.fake.messages_requests())
        pids = [gw.proc.pid for gw, _ in gateways]
        assert server.proc is not None
        cpu0 = [_cpu(pid) for pid in pids], _cpu(server.proc.pid)
        done, wall = drive(urls, {i: c for i, c in ids.items() if c}, range(2, turns + 1),
                           route)
        cpu = (sum(_cpu(pid) for pid in pids) - sum(cpu0[0]),
               _cpu(server.proc.pid) - cpu0[1])
        stats = [dict(client.get("/stats").json()) for _, client in gateways]
        time.sleep(0.5)  # the last uploads
    result = Load(done, wall, stats, first=first, first_wall=first_wall,
                  gateway_cpu=cpu[0], redis_cpu=cpu[1] if setup != "sqlite" else 0.0)
    if watch is not None:
        result.handover, result.held = watch.waits(done)
    for i in range(conversations):
        result.history.append(_upstream_history(st, before, f"c{i} t{turns}:"))
    return result


class LockWatch:
    """When each conversation's shared lock was given back, seen from outside: Redis's
    keyspace notifications for the lock keys, timed on arrival in a thread of ours."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.client.config_set("notify-keyspace-events", "Kg")  # del, expired
        self.pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        self.pubsub.psubscribe(f"__keyspace@0__:{KEY_PREFIX}lock:*")
        self.released: dict[str, list[float]] = collections.defaultdict(list)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)

    @classmethod
    @contextlib.contextmanager
    def watching(cls, url: str) -> Iterator[LockWatch]:
        watch = cls(url)
        watch.thread.start()
        try:
            yield watch
        finally:
            watch.stop.set()
            watch.thread.join(5)
            watch.pubsub.close()
            watch.client.close()

    def _listen(self) -> None:
        while not self.stop.is_set():
            message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is None or message.get("type") != "pmessage":
                continue
            now = time.perf_counter()
            if message["data"] in (b"del", b"expired"):
                key = message["channel"].decode().rpartition(":lock:")[2]
                self.released[key].append(now)

    def waits(self, turns: Sequence[Turn]) -> tuple[list[float], list[float]]:
        """(per later turn, how long it waited for the turn before's release; per turn, how
        long after its answer its lock was released)."""
        by_conversation: dict[str, list[Turn]] = collections.defaultdict(list)
        for t in turns:
            if not t.error:
                by_conversation[t.conversation_id].append(t)
        handover, held = [], []
        for cid, its in by_conversation.items():
            its.sort(key=lambda t: t.index)
            released = sorted(self.released.get(cid, ()))
            for before, after in zip(its, [*its[1:], None], strict=True):
                end = before.start + before.seconds
                # The release that ended this turn's hold: the first one after its answer.
                mine = next((r for r in released if r >= end), None)
                if mine is None:
                    continue
                held.append(mine - end)
                if after is not None:
                    handover.append(max(0.0, mine - after.start))
        return handover, held


def _cpu(pid: int) -> float:
    """A process's own utime + stime, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


_TICK = os.sysconf("SC_CLK_TCK")


def _upstream_history(st: Stack, since: int, marker: str) -> int:
    """Messages in the upstream request whose last message holds ``marker``."""
    for entry in reversed(st.fake.messages_requests()[since:]):
        body = entry.get("body")
        if isinstance(body, dict) and body.get("messages"):
            if marker in json.dumps(body["messages"][-1]):
                return len(body["messages"])
    return 0


# ---- part 2: the store's time per turn, in process -------------------------------------------


class Meter:
    """Milliseconds per part of the turn under way."""

    def __init__(self) -> None:
        self.parts: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.bytes = 0

    def reset(self) -> None:
        self.parts.clear()
        self.bytes = 0

    @contextlib.contextmanager
    def part(self, *names: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            ms = (time.perf_counter() - t0) * 1000
            for name in names:
                self.parts[name] += ms


class TimedStore:
    """A `ConversationStore` whose every coroutine method call is timed into ``meter``."""

    def __init__(self, store: ConversationStore, meter: Meter) -> None:
        self._store, self._meter = store, meter

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if not inspect.iscoroutinefunction(method):
            return method  # builds a read to go with the lock's take: no I/O of its own

        async def timed(*args: Any, **kwargs: Any) -> Any:
            with self._meter.part("store", f"store.{name}"):
                return await method(*args, **kwargs)

        return timed


class TimedLocks(ConversationLocks):
    """The conversation's lock (local, and shared when there is one), timed."""

    def __init__(self, shared: SharedLocks | None, meter: Meter) -> None:
        super().__init__(shared)
        self.meter = meter

    async def acquire(self, key: str, wait: float, *,
                      busy: Callable[[str, float], BaseException] | None = None,
                      reads: Reads | None = None) -> bool:
        # The record read along with the take is store time: counted as such.
        with self.meter.part("locks" if reads is None else "store"):
            return await super().acquire(key, wait, busy=busy, reads=reads)

    async def release(self, key: str) -> None:
        with self.meter.part("locks"):
            await super().release(key)


class TimedFiles(SessionFiles):
    """Session files whose `write` (a downloaded transcript, fsynced) is timed."""

    def __init__(self, cli_env: dict[str, str], meter: Meter) -> None:
        super().__init__(cli_env)
        self.meter = meter

    async def write(self, cwd: str, session_id: str, data: bytes) -> None:
        self.meter.bytes = len(data)
        with self.meter.part("write"):
            await super().write(cwd, session_id, data)


class TimedRecords(Records):
    """Records whose `bring` (another gateway's session made current here) is timed."""

    meter: Meter  # set once made

    async def bring(self, c: Conversation) -> Conversation:
        with self.meter.part("bring"):
            return await super().bring(c)


class TimedShare(TranscriptShare):
    """Uploads timed (the background part that holds the shared lock), with a signal when
    one is done."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uploads: list[float] = []
        self.uploaded = trio.Event()

    async def _upload(self, c: Conversation, mark: str | None) -> None:
        t0 = time.perf_counter()
        try:
            await super()._upload(c, mark)
        finally:
            self.uploads.append((time.perf_counter() - t0) * 1000)
            self.uploaded.set()


@attrs.define
class Side:
    """One gateway's conversation bookkeeping, built as ccserver/gateway.py builds it."""

    records: Records
    conversations: Conversations
    files: TimedFiles
    share: TimedShare | None = None


async def _nothing(_: str) -> None:
    pass  # no pool here: no process holds a stale session


def side(store: ConversationStore, root: Path, meter: Meter, link: RedisLink | None,
         name: str) -> Side:
    files = TimedFiles({"CLAUDE_CONFIG_DIR": str(root / name / "cfg")}, meter)
    shared = (SharedLocks(link, f"gw_{name}", ttl=30, prefix="ccbench:")
              if link is not None else None)
    locks = TimedLocks(shared, meter)
    records = TimedRecords(cast(ConversationStore, TimedStore(store, meter)), files,
                           ConversationSettings(), workspace=root / "ws",
                           cli_version=lambda: "2.1.197")
    records.meter = meter
    out = Side(records, Conversations(records, locks), files)
    if link is not None:
        out.share = TimedShare(link, files, locks, gateway_id=f"gw_{name}",
                               keep_seconds=86400, on_stale=_nothing, prefix="ccbench:")
        records.share = out.share
    return out


@attrs.define
class Sample:
    """One replayed turn: milliseconds per part, and the transcript bytes brought in."""

    index: int
    parts: dict[str, float]
    total: float
    bytes: int


async def replay_turn(gw: Side, meter: Meter, conversation: str | None, k: int,
                      chunk: bytes) -> tuple[str, Sample]:
    request = structure_request(json.dumps(
        {"model": "sonnet", "messages": [{"role": "user", "content": f"turn {k}: go on."}]}))
    share = gw.share
    if share is not None:
        share.uploaded = trio.Event()
    meter.reset()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    async with gw.conversations.claim_turn(request, conversation_id=conversation,
                                           model=MODEL) as ticket:
        t_cli = time.perf_counter()
        c = ticket.conversation
        # The CLI's part, untimed: it appends the turn to its transcript.
        path = gw.files.transcript(c.cwd, c.session_id)
        await trio.to_thread.run_sync(_append, path, chunk)
        mark = _UUID.findall(chunk.decode(errors="replace"))
        t_cli = time.perf_counter() - t_cli
        await gw.records.complete(ticket, f"answer {k}", MODEL,
                                  mark=mark[-1] if mark else None)
    total = (time.perf_counter() - t0 - t_cli) * 1000
    if share is not None:
        await share.uploaded.wait()  # the next turn finds the lock given back
    # CPU of this process for the turn, the upload included (the CLI's append too: both).
    cpu = (time.process_time() - cpu0) * 1000
    return c.id, Sample(k, dict(meter.parts) | {"cpu": cpu}, total, meter.bytes)


_UUID = re.compile(r'"uuid":"([0-9a-f-]{36})"')


def _append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        f.write(data)


def turn_chunks(transcript: bytes) -> list[bytes]:
    """A transcript cut before each prompt's ``enqueue`` line: one piece per turn (what
    the CLI appends for it)."""
    chunks: list[bytes] = []
    current = b""
    for line in transcript.splitlines(keepends=True):
        if current and b'"queue-operation"' in line and b'"enqueue"' in line:
            chunks.append(current)
            current = b""
        current += line
    if current:
        chunks.append(current)
    return chunks


async def replay(url: str, root: Path, chunks: list[bytes], turns: int
                 ) -> dict[str, list[Sample]]:
    """Every mode's turns, conversations interleaved across modes."""
    meter = Meter()
    samples: dict[str, list[Sample]] = {mode: [] for mode in SETUPS}
    sqlite = SQLiteStore(root / "replay.sqlite3")
    await sqlite.open()
    link = RedisLink(url, timeout=2)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            store = RedisStore(link, prefix="ccbench:")
            await store.open()
            samples["ping"] = await pings(link, 300)
            local = side(sqlite, root / "replay", meter, None, "s")
            a = side(store, root / "replay", meter, link, "a")
            b = side(store, root / "replay", meter, link, "b")
            for share in (a.share, b.share):
                assert share is not None
                nursery.start_soon(share.run)
            plan: dict[str, Callable[[int], Side]] = {
                "sqlite": lambda k: local, "moved": lambda k: (a, b)[k % 2],
                "affinity": lambda k: a}
            for n in range(REPLAY + WARM):
                for mode in SETUPS:
                    conversation: str | None = None
                    for k in range(1, turns + 1):
                        chunk = chunks[min(k, len(chunks)) - 1]
                        conversation, sample = await replay_turn(
                            plan[mode](k), meter, conversation, k, chunk)
                        if n >= WARM:
                            samples[mode].append(sample)
            uploads = [x for s in (a.share, b.share) if s is not None for x in s.uploads]
            samples["upload"] = [Sample(0, {}, x, 0) for x in uploads[WARM * turns * 2:]]
            nursery.cancel_scope.cancel()
    finally:
        await sqlite.close()
    return samples


async def pings(link: RedisLink, count: int) -> list[Sample]:
    """PING through `RedisLink.call` (the whole round trip from Trio), and its part inside
    the asyncio loop (redis-py and the socket): the rest is the trio-asyncio hand-over."""
    out = []
    for _ in range(count + 20):
        inner = 0.0

        async def ping(r: redis.asyncio.Redis) -> None:
            nonlocal inner
            t = time.perf_counter()
            await r.ping()
            inner = (time.perf_counter() - t) * 1000

        t0 = time.perf_counter()
        await link.call(ping)
        out.append(Sample(0, {"inner": inner}, (time.perf_counter() - t0) * 1000, 0))
    return out[20:]


def synthetic_chunks(turns: int) -> list[bytes]:
    """Turns shaped like the CLI's, for when part 1 left no transcript to copy."""
    out = []
    for k in range(turns):
        lines = [{"type": "queue-operation", "operation": "enqueue", "content": f"turn {k}"},
                 {"type": "user", "uuid": str(uuid.uuid4()), "message": {"content": "x" * 900}},
                 {"type": "assistant", "uuid": str(uuid.uuid4()),
                  "message": {"content": [{"type": "text", "text": "y" * 900}]}}]
        out.append(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    return out


# ---- the report ------------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    return percentile(sorted(values), p) if values else math.nan


def run(argv: Sequence[str] = ()) -> Report:
    conversations, turns = arg(argv, 0, 8), arg(argv, 1, 8)
    loads: dict[str, Load] = {}
    with stack() as st, running_redis(st.tmp / "redis") as server:
        for setup in SETUPS:
            loads[setup] = load(st, setup, server, conversations, turns)
        # A real transcript of a whole conversation, as the gateways uploaded it.
        with redis.Redis.from_url(server.url) as r:
            uploads = [r.hget(key, "data") for key in r.scan_iter("ccs:transcript:*")]
        longest = max((cast(bytes, u) for u in uploads if u), key=len, default=b"")
        chunks = turn_chunks(longest) if longest else synthetic_chunks(turns)
        replayed = trio.run(replay, server.url, st.tmp, chunks, turns)
    return report(conversations, turns, loads, replayed, len(longest), len(chunks))


def _ms(values: Sequence[float], p: float, scale: float = 1.0) -> str:
    """A percentile in milliseconds: whole ones for end-to-end figures (``scale`` 1000, from
    seconds), hundredths for in-process ones."""
    return f"{pct(values, p) * scale:.{0 if scale > 1 else 2}f}"


def report(conversations: int, turns: int, loads: dict[str, Load],
           replayed: dict[str, list[Sample]], transcript: int, chunks: int) -> Report:
    def store_time(mode: str, later: bool = True) -> list[float]:
        return [sum(s.parts.get(p, 0.0) for p in ("store", "locks", "bring"))
                for s in replayed[mode] if (s.index > 1) == later]

    x, y, z = (pct(store_time(m), 50) for m in ("sqlite", "affinity", "moved"))
    added, moved_added = y - x, z - x
    later = {m: loads[m].latencies(first=False) for m in SETUPS}
    e2e_aff = (pct(later["affinity"], 50) - pct(later["sqlite"], 50)) * 1000
    e2e_moved = (pct(later["moved"], 50) - pct(later["sqlite"], 50)) * 1000
    moved = [s for s in replayed["moved"] if s.index > 1]
    rep = Report(
        title="Two gateways sharing Redis vs one gateway with SQLite",
        command=f".venv/bin/python -m bench.cluster {conversations} {turns}",
        headline=f"store time per turn (p50, in process): SQLite {x:.2f} ms, Redis {y:.2f} "
                 f"ms, added {added:.2f} ms (goal ≤ 2 ms: {'met' if added <= 2 else 'NOT met'}); "
                 f"a turn that moved gateway: {z:.2f} ms, added {moved_added:.2f} ms (its "
                 "session's transcript brought over: what portability costs); throughput "
                 "of turns 2+: "
                 + ", ".join(f"{m} {_throughput(loads[m]):.2f}" for m in SETUPS) + " turns/s",
        header=("", *(LABELS[m] for m in SETUPS)),
    )

    def row(label: str, cell: Callable[[str], str]) -> None:
        rep.rows.append((label, *(cell(m) for m in SETUPS)))

    row("first turns: wall / p50 / p99 (every conversation, then settled)",
        lambda m: f"{loads[m].first_wall:.1f} s / {_ms(loads[m].latencies(True), 50, 1000)}"
                  f" / {_ms(loads[m].latencies(True), 99, 1000)} ms")
    row(f"turns 2..{turns}: ok / errors (all turns)",
        lambda m: f"{len(loads[m].latencies())} / {loads[m].errors()}")
    row(f"turns 2..{turns}: wall (first request to last answer)",
        lambda m: f"{loads[m].wall:.1f} s")
    row(f"turns 2..{turns}: throughput", lambda m: f"{_throughput(loads[m]):.2f} turns/s")
    row(f"turns 2..{turns}: latency p50 / p99",
        lambda m: f"{_ms(later[m], 50, 1000)} / {_ms(later[m], 99, 1000)} ms")
    row(f"turns 2..{turns}: CPU per turn, gateways' own / redis-server",
        lambda m: f"{loads[m].gateway_cpu / len(loads[m].turns) * 1000:.1f} / "
                  + ("-" if m == "sqlite" else
                     f"{loads[m].redis_cpu / len(loads[m].turns) * 1000:.1f}") + " ms")
    row("pool warm_hits / bound_hits / cold_starts",
        lambda m: " / ".join(str(loads[m].counter("pool", key))
                             for key in ("warm_hits", "bound_hits", "cold_starts")))
    row("transcripts uploaded / downloaded",
        lambda m: "-" if m == "sqlite" else
        f"{loads[m].counter('transcripts', 'uploaded')} / "
        f"{loads[m].counter('transcripts', 'downloaded')}")
    row("waited for the turn before's lock (p50 / max)",
        lambda m: "-" if m != "moved" else
        f"{_ms(loads[m].handover, 50, 1000)} / {max(loads[m].handover, default=0) * 1000:.0f} ms")
    row("lock kept after the answer, for the upload (p50 / p90)",
        lambda m: "-" if m != "moved" else
        f"{_ms(loads[m].held, 50, 1000)} / {_ms(loads[m].held, 90, 1000)} ms")
    row(f"upstream messages in turn {turns} (min / max)",
        lambda m: f"{min(loads[m].history)} / {max(loads[m].history)}")
    row("in process: store time per turn p50 / p90 (turns 2+)",
        lambda m: f"{_ms(store_time(m), 50)} / {_ms(store_time(m), 90)} ms")
    row("  of which store methods / locks / bring (p50)",
        lambda m: " / ".join(_ms([s.parts.get(p, 0.0) for s in replayed[m] if s.index > 1], 50)
                             for p in ("store", "locks", "bring")) + " ms")
    row("  per call p50: " + " / ".join(_CALLS),
        lambda m: " / ".join(_ms([s.parts[p] / _per_turn(p) for s in replayed[m]
                                  if s.index > 1 and p in s.parts], 50) for p in _CALLS)
        + " ms")
    row("  added vs SQLite (p50)",
        lambda m: "-" if m == "sqlite" else f"{pct(store_time(m), 50) - x:+.2f} ms")
    row("in process: store time, first turns (p50)",
        lambda m: f"{_ms(store_time(m, later=False), 50)} ms")
    row("in process: whole bookkeeping per turn p50 (turns 2+)",
        lambda m: f"{_ms([s.total for s in replayed[m] if s.index > 1], 50)} ms")
    row("in process: CPU per turn p50, upload included (turns 2+)",
        lambda m: f"{_ms([s.parts['cpu'] for s in replayed[m] if s.index > 1], 50)} ms")
    rep.rows.append(("end to end: p50 difference vs SQLite, turns 2+", "-", f"{e2e_moved:+.0f} ms",
                     f"{e2e_aff:+.0f} ms"))
    download = [s.parts.get("bring", 0.0) - s.parts.get("write", 0.0) for s in moved]
    rep.notes += [
        f"part 1: {conversations} conversations x {turns} turns, non-streaming, {THREADS} "
        "client threads; moved: turn k of conversation i on gateway (i + k) mod 2; affinity: "
        "conversation i on gateway i mod 2; claude.max_concurrent_sessions = conversations "
        "+ 6, so no process is retired for room; each set-up on fresh gateways; the first "
        "turns of all conversations run first, then the gateways settle (pool refilled, "
        "3 s), then turns 2..T: those are timed for throughput and latency",
        "a moved turn starts a CLI with --resume on the other gateway (its process there, if "
        "any, is stale and stopped): the end-to-end cost of moving is that cold start, not "
        "the store; with affinity the conversation's process stays bound, as with SQLite",
        f"part 2: {REPLAY} conversations x {turns} turns per mode after {WARM} dropped, modes "
        "interleaved; store time = store methods + conversation lock take/release + "
        "bring (transcript download and fsynced write); whole bookkeeping adds the "
        "session-file work both stores share (mkdir, roll-back check, fingerprint)",
        f"moved turn: transcript {pct([s.bytes for s in moved], 50) / 1024:.1f} KiB at p50 "
        f"(max {max((s.bytes for s in moved), default=0) / 1024:.1f} KiB), download p50 "
        f"{_ms(download, 50)} ms, fsynced write p50 "
        f"{_ms([s.parts.get('write', 0.0) for s in moved], 50)} ms; the CLI's turn copied "
        f"from a real {transcript / 1024:.1f} KiB transcript of part 1 ({chunks} turns)",
        "upload after each Redis turn (background, off the response's path; the shared lock "
        f"is kept until it is done): p50 {_ms([s.total for s in replayed['upload']], 50)} ms, "
        f"p90 {_ms([s.total for s in replayed['upload']], 90)} ms",
        "one Redis round trip (PING) through RedisLink.call from Trio: p50 "
        f"{_ms([s.total for s in replayed['ping']], 50)} ms, of which "
        f"{_ms([s.parts['inner'] for s in replayed['ping']], 50)} ms inside the asyncio "
        "loop (redis-py and the socket); the rest is the trio-asyncio hand-over",
        "Redis: redis-server on loopback, appendonly yes, appendfsync always; SQLite: WAL, "
        "synchronous=FULL; both in the same temporary directory",
    ]
    if min(min(loads[m].history) for m in SETUPS) < 2 * turns - 1:
        rep.notes.append(f"WARNING: some turn {turns} did not carry the whole history upstream")
    return rep


#: The store calls of a later turn, in order (store.get twice: before and under the lock).
_CALLS = ("store.get_counted", "store.messages", "store.add_turn")


def _per_turn(part: str) -> int:
    return 2 if part == "store.get" else 1


def _throughput(result: Load) -> float:
    return len(result.latencies()) / result.wall if result.wall else math.nan


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()

