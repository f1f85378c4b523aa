"""`open_turn` end to end inside the server, with a CLI stand-in that replays a recorded
stream-json transcript (tests/support/replay_cli.py) instead of the real CLI.

What the core promises: a good turn is recorded in its conversation before its
`TurnFinished` reaches the surface; a failed turn is rolled back; a process that could not
be started for a passing reason is started again; a conversation answers one turn at a
time. Real clock (subprocess I/O); every test runs under a `trio.fail_after` guard.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from ccproto import PlanOptions, TextDelta, TurnFailed, TurnFinished, structure_request
from ccserver.conversations.records import Records
from ccserver.conversations.registry import Conversations
from ccserver.conversations.sessions import SessionFiles
from ccserver.conversations.sqlite import SQLiteStore
from ccserver.core.context import TurnServices
from ccserver.core.planning import planner
from ccserver.core.retry import RetryPolicy
from ccserver.core.run import Run, open_turn
from ccserver.errors import Busy, ConversationBusy, ConversationNotFound
from ccserver.pool import lease as lease_module
from ccserver.pool.admission import Admission
from ccserver.pool.pool import Pool
from ccserver.proc.reading import RunLimits
from ccserver.settings import Settings
from ccserver.settings.sections import ConversationSettings

REPLAY = Path(__file__).resolve().parents[1] / "support" / "replay_cli.py"
TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"
GUARD = 30.0  # seconds; generous for a loaded CI box, far below pytest's patience
LIMITS = RunLimits(first_output=10, idle=10, total=20, kill_grace=1.0,
                   max_line_bytes=1 << 22, stderr_tail_bytes=4096)


@asynccontextmanager
async def core(tmp_path: Path, transcript: str, *, max_cold_starts: int = 4,
               queue_timeout: float = 5.0) -> AsyncIterator[TurnServices]:
    """Turn services over the replaying stand-in, with the pool running."""
    exe = tmp_path / "claude"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPLAY}" "$@"\n')
    exe.chmod(0o755)
    store = SQLiteStore(tmp_path / "db.sqlite3")
    await store.open()
    workspace = tmp_path / "ws"
    records = Records(
        store, SessionFiles({"CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}),
        ConversationSettings(busy_wait_seconds=0.2), workspace=workspace,
        cli_version=lambda: "2.1.197")
    # idle_seconds=0: the stand-in answers one turn and exits, so no process is kept.
    pool = Pool(size=0, idle_seconds=0, max_processes=4, limits=LIMITS,
                max_cold_starts=max_cold_starts)
    services = TurnServices(
        settings=Settings(), options=PlanOptions(executable=str(exe), cwd=str(workspace)),
        environ={**os.environ, "REPLAY_FILE": str(TRANSCRIPTS / f"{transcript}.jsonl")},
        limits=LIMITS, retry=RetryPolicy(max_retries=2, backoff_seconds=0.01), pool=pool,
        admission=Admission(max_live=4, max_queued=4, queue_timeout=queue_timeout),
        conversations=Conversations(records), records=records)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            yield services
            nursery.cancel_scope.cancel()  # the pool kills and reaps what is left
    finally:
        await store.close()


def request(text: str) -> Any:
    return structure_request(json.dumps({"messages": [{"role": "user", "content": text}]})
                             .encode())


async def read_all(run: Run) -> list[Any]:
    events = []
    while not isinstance(event := await run.receive(), TurnFinished | TurnFailed):
        events.append(event)
    return [*events, event]


async def test_a_good_turn_is_recorded_before_its_turn_finished(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with core(tmp_path, "text_stream") as services:
            async with open_turn(services, request("hi"), conversation_id=None) as run:
                events = await read_all(run)
                assert isinstance(events[-1], TurnFinished)
                # Already recorded: the client's next turn, sent now, would find it.
                conversation = await services.records.get(run.conversation_id)
                messages = await services.records.store.messages(conversation.id)
                assert conversation.turns == 1
                reply = "".join(e.text for e in events if isinstance(e, TextDelta))
                assert reply and [m.role for m in messages] == ["user", "assistant"]
                assert messages[1].parts == (("text", reply),)
            assert services.pool.stats()["killed"] == 0


async def test_a_failed_turn_is_rolled_back_and_its_process_killed(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with core(tmp_path, "err500") as services:
            async with open_turn(services, request("hi"), conversation_id=None) as run:
                assert isinstance((await read_all(run))[-1], TurnFailed)
                # A failed first turn: its new conversation goes, row, messages and
                # directory, before the surface hears of the failure and answers.
                with pytest.raises(ConversationNotFound):
                    await services.records.get(run.conversation_id)
            assert await services.records.store.messages(run.conversation_id) == []
            assert not any(services.records.workspace.glob("conv_*"))
            assert services.pool.stats()["killed"] == 1


async def test_a_passing_start_failure_is_started_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = trio.lowlevel.open_process
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> trio.Process:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return await real(*args, **kwargs)

    monkeypatch.setattr(trio.lowlevel, "open_process", flaky)
    with trio.fail_after(GUARD):
        async with core(tmp_path, "text_stream") as services:
            async with open_turn(services, request("hi"), conversation_id=None) as run:
                assert isinstance((await read_all(run))[-1], TurnFinished)
            assert calls == 2 and services.pool.stats()["cold_starts"] == 2
            conversation = await services.records.get(run.conversation_id)
            assert conversation.turns == 1


async def test_a_busy_conversation_refuses_a_second_turn(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with core(tmp_path, "text_stream") as services:
            async with open_turn(services, request("one"), conversation_id=None) as run:
                await read_all(run)
            cid = run.conversation_id
            slow = attrs.evolve(services, environ={**services.environ, "REPLAY_DELAY": "0.3"})
            refused: list[BaseException] = []

            async def third() -> None:  # another request, so another task
                try:
                    async with open_turn(services, request("three"), conversation_id=cid):
                        pass
                except ConversationBusy as exc:
                    refused.append(exc)

            async with open_turn(slow, request("two"), conversation_id=cid) as running:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(third)
                assert [type(e) for e in refused] == [ConversationBusy]
                assert isinstance(refused[0], ConversationBusy)
                assert refused[0].status_hint == 409
                assert isinstance((await read_all(running))[-1], TurnFinished)
            assert (await services.records.get(cid)).turns == 2


async def test_a_cold_start_holds_its_slot_until_the_first_line_only(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with core(tmp_path, "text_stream", max_cold_starts=1) as services:
            cold = services.pool.cold
            async with open_turn(services, request("hi"), conversation_id=None) as run:
                first = await run.receive()
                # The process has answered: its start-up is over, its slot is free.
                assert isinstance(first, TextDelta) and cold.running == 0
                assert isinstance((await read_all(run))[-1], TurnFinished)
            assert cold.running == cold.waiting == 0


async def test_a_turn_that_cannot_start_in_time_gets_429(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with core(tmp_path, "text_stream", max_cold_starts=1,
                        queue_timeout=0.2) as services:
            cold = services.pool.cold
            # Another turn's process is starting and does not get to its first line.
            await cold.acquire("other", deadline=float("inf"), retry_after=1.0)
            with pytest.raises(Busy) as refused:
                async with open_turn(services, request("hi"), conversation_id=None):
                    pass
            assert refused.value.status_hint == 429 and refused.value.retry_after == 1.0
            # Refused before any process or conversation: nothing to clean up.
            assert services.pool.stats()["cold_starts"] == 0
            assert not any(services.records.workspace.glob("conv_*"))
            cold.release("other")
            async with open_turn(services, request("hi"), conversation_id=None) as run:
                assert isinstance((await read_all(run))[-1], TurnFinished)


async def test_a_taken_warm_process_is_replaced_after_the_first_event_went_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not at the take: a CLI's start-up would share the CPU with the first token.
    monkeypatch.setattr(lease_module, "REFILL_WAITS", float("inf"))
    with trio.fail_after(GUARD):
        async with core(tmp_path, "text_stream") as services:
            pool = services.pool
            pool.want(*planner(services, request("-")))
            pool.size = 1
            while pool.stats()["warm"] < 1:
                await trio.sleep(0.01)
            async with open_turn(services, request("hi"), conversation_id=None) as run:
                assert pool.stats()["warm_hits"] == 1
                assert isinstance(await run.receive(), TextDelta)
                await trio.testing.wait_all_tasks_blocked()
                assert pool.stats()["warm"] == pool.stats()["spawning"] == 0
                await run.receive()  # the surface sent the first one on and asks for more
                while pool.stats()["warm"] < 1:
                    await trio.sleep(0.01)
                await read_all(run)
