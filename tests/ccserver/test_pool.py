"""The warm pool: its decisions without processes (`Books`), then its hosting and a
turn's `Lease` with the stand-in CLI (tests/support/standin_cli.py) as the process.

Real clock for the hosted tests (subprocess I/O and autojump_clock do not mix); every
trio test runs under a `trio.fail_after` guard so a hang fails instead of blocking.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import attrs
import pytest
import trio
import trio.testing

from ccproto import CLIStream, Invocation, PlanOptions, structure_request
from ccserver.conversations.ticket import Identity
from ccserver.core.context import TurnServices
from ccserver.core.planning import planner
from ccserver.errors import Busy
from ccserver.pool import lease as lease_module
from ccserver.pool.books import Books
from ccserver.pool.coldstarts import ColdStarts
from ccserver.pool.pool import Pool
from ccserver.pool.pooled import PooledProcess, ProcessPlan
from ccserver.proc.cli import CLIProcess
from ccserver.proc.reading import RunLimits

STANDIN = Path(__file__).resolve().parents[1] / "support" / "standin_cli.py"
GUARD = 20.0  # seconds; generous for a loaded CI box, far below pytest's patience
LIMITS = RunLimits(first_output=5, idle=5, total=10, kill_grace=1.0,
                   max_line_bytes=1 << 20, stderr_tail_bytes=4096)


# ---- decisions, no processes -------------------------------------------------------------

def idle(conversation_id: str, shape: Any = "a", *, since: float = 0.0,
         alive: bool = True) -> PooledProcess:
    """A process as the books see it; its `proc` only answers `returncode`."""
    proc = cast(CLIProcess, SimpleNamespace(returncode=None if alive else 1))
    return PooledProcess(shape=shape, conversation_id=conversation_id, session_id="s",
                         cwd="/w", stream=CLIStream(), proc=proc, idle_since=since)


def books_with(max_processes: int, warm: list[PooledProcess],
               bound: list[PooledProcess]) -> Books:
    books = Books(max_processes)
    books.warm.extend(warm)
    books.bound.update({p.conversation_id: p for p in bound})
    return books


def test_making_room_retires_warm_first_then_the_longest_idle() -> None:
    w = idle("w")
    old, new = idle("old", since=1.0), idle("new", since=5.0)
    books = books_with(4, [w], [new, old])
    # 3 idle + 1 busy hosted = 4 = the cap; a turn on a new process needs 1 more.
    assert books.make_room(4, new_process=True) == [w]
    # w has exited (3 live); the first turn's promise still counts.
    books.gone(w)
    assert books.make_room(3, new_process=True) == [old]
    assert books.promised == 2 and books.bound == {"new": new} and books.warm == []


def test_a_process_leaving_to_make_room_is_counted_once() -> None:
    # Cap 4, four idle conversations: the first turn retires c0 for its promise. A second
    # turn arriving while c0 still exits needs one more place, not two: c0's is taken.
    c = [idle(f"c{i}", since=float(i)) for i in range(4)]
    books = books_with(4, [], c)
    assert books.make_room(4, new_process=True) == [c[0]]
    assert books.make_room(4, new_process=True) == [c[1]]
    assert books.hosted(4) == 4  # two leaving, two promised: the cap exactly
    books.gone(c[0])
    assert books.hosted(3) == 4 and books.leaving == {c[1]}


def held(conversation_id: str, *, since: float = 0.0) -> PooledProcess:
    """A process whose turn waits for client tool results."""
    process = idle(conversation_id, since=since)
    process.paused = cast(Any, object())
    return process


def test_a_paused_turn_keeps_its_process_held_and_its_next_request_takes_it() -> None:
    books = Books(4)
    process = held("c")
    process.busy = True
    assert books.keeps(process, good=True, idle_seconds=300, now=7.0)
    assert books.held == {"c": process} and books.bound == {}
    taken, stop = books.take_bound("c", process.shape)
    assert taken is process and stop is None and books.held == {}
    # Past the hold deadline it leaves the books, to be stopped. Held even when idle
    # processes are not kept at all: the hold has its own deadline.
    assert books.keeps(process, good=True, idle_seconds=0, now=7.0)
    assert books.held_before(6.0) == [] and books.held_before(8.0) == [process]
    assert books.held == {}


def test_a_turn_on_an_existing_process_makes_no_promise() -> None:
    w = idle("w")
    books = books_with(1, [w], [])
    assert books.make_room(1, new_process=False) == []
    assert books.promised == 0 and books.warm == [w]


def test_nothing_is_retired_while_the_cap_has_room() -> None:
    books = books_with(5, [idle("w")], [idle("b")])
    assert books.make_room(2, new_process=True) == []
    assert books.hosted(2) == 3


def test_a_promise_released_frees_its_place_under_the_cap() -> None:
    w = idle("w")
    books = books_with(2, [w], [])
    assert books.make_room(1, new_process=True) == []  # 1 live + 1 promised = the cap
    books.release_promise()
    assert books.make_room(1, new_process=True) == []
    books.release_promise()
    books.release_promise()  # never below zero
    assert books.promised == 0


def test_held_processes_make_room_last_and_longest_held_first() -> None:
    # An agent framework's run that ends on a tool call never sends its result: held
    # processes pile up, and the cap must still bound them.
    w, b = idle("w"), idle("b", since=9.0)
    old, new = idle("old", since=1.0), idle("new", since=5.0)
    books = books_with(4, [w], [b])
    books.held.update({"new": new, "old": old})
    assert books.make_room(4, new_process=True) == [w]
    books.gone(w)
    assert books.make_room(3, new_process=True) == [b]
    books.gone(b)
    assert books.make_room(2, new_process=True) == [old]
    assert books.held == {"new": new}


def test_warm_process_is_taken_by_shape_and_only_alive() -> None:
    dead, other, good = idle("d", alive=False), idle("o", shape="b"), idle("g")
    books = books_with(9, [dead, other, good], [])
    assert books.take_warm("a") is good and good.busy and good.taken
    assert books.take_warm("a") is None
    assert books.counters["warm_hits"] == 1


def test_a_lean_request_takes_a_lean_warm_process() -> None:
    # The -chat alias changes the argv (--tools "", --system-prompt), so the shape: the
    # pool keeps lean warm processes apart and a lean request takes one of them only.
    services = cast(TurnServices, SimpleNamespace(
        options=PlanOptions(executable="claude", cwd="/ws"), environ={},
        records=SimpleNamespace(new_identity=lambda: Identity("c", "s", "/ws"))))

    def shaped(model: str, **extra: Any) -> tuple[Any, PooledProcess]:
        request = structure_request(json.dumps({
            "model": model, "messages": [{"role": "user", "content": "q"}], **extra}))
        shape, fresh = planner(services, request)
        assert fresh().inv.process_key == shape  # a warm process planned fits the shape
        return shape, idle(model, shape=shape)

    lean_shape, lean = shaped("sonnet-chat")
    full_shape, full = shaped("sonnet")
    header_shape, _ = shaped("sonnet", profile="lean")
    assert lean_shape != full_shape and header_shape == lean_shape
    books = books_with(9, [full, lean], [])
    assert books.take_warm(lean_shape) is lean
    assert books.take_warm(lean_shape) is None
    assert books.take_warm(full_shape) is full


def test_bound_process_of_a_changed_shape_is_stopped_and_the_turn_misses() -> None:
    p = idle("c", shape="a")
    books = books_with(9, [], [p])
    assert books.take_bound("c", "b") == (None, p)
    assert books.bound == {} and books.counters["misses"] == 1
    q = idle("c", shape="a")
    books.bound["c"] = q
    assert books.take_bound("c", "a") == (q, None) and q.busy
    assert books.counters["bound_hits"] == 1
    assert books.take_bound("nobody", "a") == (None, None)


def test_a_good_turn_keeps_its_process_bound_a_bad_one_does_not() -> None:
    books = Books(9)
    p = idle("c")
    assert books.keeps(p, good=True, idle_seconds=60, now=7.0)
    assert books.bound == {"c": p} and p.idle_since == 7.0 and p.turns == 1
    q = idle("d")
    assert not books.keeps(q, good=False, idle_seconds=60, now=7.0)
    assert not books.keeps(idle("e"), good=True, idle_seconds=0, now=7.0)
    assert "d" not in books.bound and "e" not in books.bound


def test_upkeep_takes_expired_and_unwanted_processes_off_the_books() -> None:
    w1, w2 = idle("w1", shape="a"), idle("w2", shape="b")
    b1, b2 = idle("b1", since=1.0), idle("b2", since=9.0)
    books = books_with(9, [w1, w2], [b1, b2])
    assert books.idle_before(5.0) == [b1]
    assert books.unwanted_warm({"a"}) == [w2]
    assert books.all_idle() == [w1, b2]
    assert books.warm == [] and books.bound == {}


# ---- hosting, with the stand-in CLI ------------------------------------------------------

def plan(conversation_id: str, *, cwd: Path, own_cwd: bool = False) -> ProcessPlan:
    # --echo-stdin: the stand-in lives until its stdin closes, like a persistent CLI.
    inv = Invocation(argv=(sys.executable, str(STANDIN), "--echo-stdin"),
                     env=dict(os.environ), stdin=b"", cwd=str(cwd))
    return ProcessPlan(inv=inv, conversation_id=conversation_id, session_id="s",
                       own_cwd=own_cwd)


@asynccontextmanager
async def running(pool: Pool) -> AsyncIterator[Pool]:
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        try:
            yield pool
        finally:
            nursery.cancel_scope.cancel()  # the pool kills and reaps what is left


def new_pool(*, max_processes: int = 4, idle_seconds: float = 60.0,
             max_cold_starts: int = 4) -> Pool:
    return Pool(size=0, idle_seconds=idle_seconds, max_processes=max_processes,
                limits=LIMITS, max_cold_starts=max_cold_starts)


async def test_a_good_turn_leaves_the_process_bound_for_the_next(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool()) as pool:
            async with pool.lease() as lease:
                await lease.make_room()
                process = await lease.start(plan("c1", cwd=tmp_path))
                await lease.give_back(good=True)
            assert pool.stats()["bound"] == 1 and pool.stats()["cold_starts"] == 1
            shape = plan("c1", cwd=tmp_path).inv.process_key
            async with pool.lease() as lease:
                await lease.take_bound("c1", shape)
                assert lease.process is process
                await lease.give_back(good=True)
            assert pool.stats()["bound_hits"] == 1 and process.turns == 2
            await pool.forget("c1")
            assert process.dead.is_set()
            assert pool.stats()["retired"] == 1 and pool.stats()["killed"] == 0


async def test_a_process_that_exits_mid_turn_keeps_its_output_for_its_reader(
        tmp_path: Path) -> None:
    # It prints its lines and exits before its turn reads them: the host must not close
    # its stdout under the reader (which would lose the lines to a ClosedResourceError).
    inv = Invocation(argv=(sys.executable, str(STANDIN), "--lines", "200"),
                     env=dict(os.environ), stdin=b"", cwd=str(tmp_path))
    with trio.fail_after(GUARD):
        async with running(new_pool()) as pool, pool.lease() as lease:
            await lease.make_room()
            process = await lease.start(ProcessPlan(inv=inv, conversation_id="c",
                                                    session_id="s"))
            assert process.proc is not None
            await until(lambda: process.proc is not None and process.proc.returncode is not None)
            await trio.sleep(0.2)  # the host's own wait returned: teardown would follow now
            lines = b""
            while chunk := await process.proc.receive_some():
                lines += chunk
            assert lines.count(b"\n") == 201 and not process.dead.is_set()  # "ready" too
            await lease.give_back(good=False)
            assert process.dead.is_set()


async def test_a_failed_turn_kills_its_process(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool()) as pool:
            async with pool.lease() as lease:
                await lease.make_room()
                process = await lease.start(plan("c1", cwd=tmp_path))
                await lease.give_back(good=False)
                assert process.dead.is_set()  # gone before the turn is rolled back
            stats = pool.stats()
            assert stats["killed"] == 1 and stats["bound"] == 0


async def test_room_is_made_by_retiring_an_idle_process_and_waiting(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(max_processes=1)) as pool:
            async with pool.lease() as lease:
                await lease.make_room()
                first = await lease.start(plan("c1", cwd=tmp_path))
                await lease.give_back(good=True)
            async with pool.lease() as lease:
                await lease.take_bound("c2", "no such shape")
                await lease.make_room()
                # Retired (EOF, exited by itself) and gone before the new one starts.
                assert first.dead.is_set() and pool.stats()["retired"] == 1
                second = await lease.start(plan("c2", cwd=tmp_path))
                await lease.give_back(good=True)
            assert pool.stats()["bound"] == 1 and not second.dead.is_set()


async def test_room_is_made_by_killing_a_held_process_when_none_is_idle(tmp_path: Path
                                                                          ) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(max_processes=1)) as pool:
            async with pool.lease() as lease:
                await lease.make_room()
                held = await lease.start(plan("c1", cwd=tmp_path))
                held.paused = cast(Any, object())  # its turn waits for tool results
                await lease.give_back(good=True)
            assert pool.stats()["held"] == 1
            async with pool.lease() as lease:
                await lease.take_bound("c2", "no such shape")
                await lease.make_room()
                # Killed (EOF would make the CLI fail its calls and call the API once
                # more) and gone before the new one starts.
                assert held.dead.is_set()
                assert pool.stats()["killed"] == 1 and pool.stats()["retired"] == 0
                await lease.start(plan("c2", cwd=tmp_path))
                await lease.give_back(good=True)
            assert pool.stats()["held"] == 0 and pool.stats()["bound"] == 1


async def test_a_conversation_waits_for_its_killed_process(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        pool = Pool(size=0, idle_seconds=60, max_processes=4, limits=LIMITS, hold_seconds=0.2)
        async with running(pool):
            async with pool.lease() as lease:
                await lease.make_room()
                process = await lease.start(plan("c1", cwd=tmp_path))
                process.paused = cast(Any, object())
                await lease.give_back(good=True)
            # The upkeep kills it at its hold deadline; the conversation's next turn must
            # not start another process on its session before this one is reaped.
            while pool.stats()["killed"] == 0:
                await trio.sleep(0)  # at once: the process is then still being reaped
            async with pool.lease() as lease:
                await lease.take_bound("c1", process.shape)
                assert process.dead.is_set() and lease.process is None


async def test_an_unused_promise_and_process_are_given_back(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(max_processes=1)) as pool:
            async with pool.lease() as lease:
                await lease.make_room()  # promises a new process, then never starts it
            async with pool.lease() as lease:
                await lease.make_room()  # the cap has room again: nothing to retire
                process = await lease.start(plan("c1", cwd=tmp_path))
                await lease.give_back(good=True)
            shape = plan("c1", cwd=tmp_path).inv.process_key
            with trio.CancelScope() as cancelled:
                async with pool.lease() as lease:
                    await lease.take_bound("c1", shape)
                    cancelled.cancel()  # the turn is cancelled before it used the process
                    await trio.sleep_forever()
            assert not process.dead.is_set() and pool.stats()["bound"] == 1


async def test_a_conversation_waits_for_its_exiting_process(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(idle_seconds=0.2)) as pool:
            async with pool.lease() as lease:
                await lease.make_room()
                process = await lease.start(plan("c1", cwd=tmp_path))
                await lease.give_back(good=True)
            # The upkeep retires it once idle; the next turn finds it exiting or gone.
            while pool.stats()["retired"] == 0:
                await trio.sleep(0.05)
            async with pool.lease() as lease:
                await lease.take_bound("c1", process.shape)
                assert process.dead.is_set() and lease.process is None


async def test_own_directory_is_made_and_removed_if_no_turn_came(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        unused, used = tmp_path / "conv_unused", tmp_path / "conv_used"
        async with running(new_pool()) as pool:
            async with pool.lease() as lease:
                await lease.make_room()
                await lease.start(plan("c2", cwd=used, own_cwd=True))
                await lease.give_back(good=False)
            assert used.is_dir()  # it served a turn: the conversation's directory stays
            pool.want("shape", lambda: plan("c1", cwd=unused, own_cwd=True))
            pool.size = 1
            while pool.stats()["warm"] == 0:
                await trio.sleep(0.05)
            assert unused.is_dir()
            await pool.shutdown()  # retired: exits by itself
            assert not unused.exists()
            assert pool.stats()["warm"] == 0 and pool.stats()["retired"] == 1


# ---- cold starts: at most K starting at once, the rest in line ---------------------------

NEVER = float("inf")


async def until(condition: Any) -> None:
    """Poll, with no timing assumption: the test's guard bounds it."""
    while not condition():
        await trio.sleep(0.01)


async def test_at_most_k_cold_starts_run_and_the_rest_wait_in_order(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(max_processes=8, max_cold_starts=2)) as pool:
            started: list[int] = []
            ready = {i: trio.Event() for i in range(5)}

            async def turn(i: int) -> None:
                async with pool.lease() as lease:
                    await lease.wait_to_start(deadline=NEVER, retry_after=1.0)
                    await lease.make_room()
                    started.append(i)
                    await lease.start(plan(f"c{i}", cwd=tmp_path))
                    await ready[i].wait()
                    lease.ready()  # its first line: the start-up is over
                    await lease.give_back(good=True)

            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(turn, i)
                    # Arrival order: each is running or in line before the next comes.
                    await until(lambda i=i: pool.cold.running + pool.cold.waiting == i + 1)
                assert started == [0, 1] and pool.cold.running == 2
                assert pool.cold.waiting == 3
                for i in range(5):
                    ready[i].set()
                    await until(lambda i=i: len(started) == min(5, i + 3))
                    assert started == list(range(min(5, i + 3)))
                    assert pool.cold.running <= 2
            assert pool.cold.running == pool.cold.waiting == 0
            assert pool.stats()["cold_starts"] == 5 and pool.stats()["bound"] == 5


async def test_a_waiter_past_its_deadline_is_refused_with_retry_after(tmp_path: Path
                                                                      ) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(max_cold_starts=1)) as pool:
            async with pool.lease() as first:
                await first.wait_to_start(deadline=NEVER, retry_after=1.0)
                async with pool.lease() as second:
                    with pytest.raises(Busy) as refused:
                        await second.wait_to_start(deadline=trio.current_time() + 0.05,
                                                   retry_after=7.0)
                    assert refused.value.retry_after == 7.0
                    assert refused.value.status_hint == 429
                    assert pool.cold.waiting == 0 and pool.cold.running == 1
            # The first one's slot went back with its lease, unused.
            assert pool.cold.running == 0


async def test_a_cancelled_waiter_frees_its_place_in_line(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(max_cold_starts=1)) as pool:
            order: list[str] = []

            async def wait(name: str, scope: trio.CancelScope) -> None:
                with scope:
                    async with pool.lease() as lease:
                        await lease.wait_to_start(deadline=NEVER, retry_after=1.0)
                        order.append(name)

            async with pool.lease() as holder, trio.open_nursery() as nursery:
                await holder.wait_to_start(deadline=NEVER, retry_after=1.0)
                gone, stays = trio.CancelScope(), trio.CancelScope()
                nursery.start_soon(wait, "gone", gone)
                await until(lambda: pool.cold.waiting == 1)
                nursery.start_soon(wait, "stays", stays)
                await until(lambda: pool.cold.waiting == 2)
                gone.cancel()  # its client went away
                await until(lambda: pool.cold.waiting == 1)
                holder.ready()
                await until(lambda: order == ["stays"])
            assert pool.cold.running == pool.cold.waiting == 0


async def test_a_failed_spawn_gives_its_slot_back(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(max_cold_starts=1)) as pool:
            broken = plan("c1", cwd=tmp_path)
            broken = attrs.evolve(broken, inv=attrs.evolve(
                broken.inv, argv=(str(tmp_path / "no-such-cli"),)))
            async with pool.lease() as lease:
                await lease.make_room()
                with pytest.raises(Exception):  # noqa: B017  ProcessStartError's cause
                    await lease.start(broken)
                assert pool.cold.running == 0


async def test_warm_and_bound_turns_never_wait_for_a_cold_start(tmp_path: Path) -> None:
    with trio.fail_after(GUARD):
        async with running(new_pool(max_cold_starts=1)) as pool:
            async with pool.lease() as lease:
                await lease.make_room()
                process = await lease.start(plan("c1", cwd=tmp_path))
                lease.ready()
                await lease.give_back(good=True)
            pool.want("warm-shape", lambda: plan("w", cwd=tmp_path))
            pool.size = 1
            await until(lambda: pool.stats()["warm"] == 1)
            async with pool.lease() as blocker:
                await blocker.wait_to_start(deadline=NEVER, retry_after=1.0)
                assert not pool.cold.free_for_refill()
                # Every slot is taken, yet a bound process and a warm one go at once:
                # neither waits (a deadline already past would refuse one that did).
                async with pool.lease() as lease:
                    await lease.take_bound("c1", process.shape)
                    assert lease.process is process
                    await lease.wait_to_start(deadline=-NEVER, retry_after=1.0)
                    await lease.make_room()
                    await lease.give_back(good=True)
                async with pool.lease() as lease:
                    warm = lease.take_warm(plan("w", cwd=tmp_path).inv.process_key)
                    assert warm is not None
                    await lease.wait_to_start(deadline=-NEVER, retry_after=1.0)
                    await lease.give_back(good=False)
                assert pool.cold.running == 1 and pool.cold.waiting == 0


async def test_refills_start_only_when_a_slot_is_free_and_no_turn_waits() -> None:
    with trio.fail_after(GUARD):
        cold = ColdStarts(2)
        assert cold.free_for_refill()
        await cold.acquire("a", deadline=NEVER, retry_after=1.0)
        assert cold.free_for_refill()  # one slot left, nobody waits
        await cold.acquire("b", deadline=NEVER, retry_after=1.0)
        assert not cold.free_for_refill() and cold.running == cold.limit == 2
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(cold.acquire, "c", deadline=NEVER, retry_after=1.0))
            await until(lambda: cold.waiting == 1)
            cold.release("a")  # goes to the turn in line, not to a refill
            await until(lambda: cold.waiting == 0)
        assert not cold.free_for_refill()
        cold.release("b")
        assert cold.free_for_refill()


async def test_a_taken_warm_process_is_replaced_once_its_turn_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A new CLI's start-up would share the CPU with the turn's first token: the refill
    # waits for the turn's first output (`Lease.answering`), or for the turn to end.
    monkeypatch.setattr(lease_module, "REFILL_WAITS", NEVER)
    with trio.fail_after(GUARD):
        async with running(new_pool()) as pool:
            shape = plan("w", cwd=tmp_path).inv.process_key
            pool.want(shape, lambda: plan("w", cwd=tmp_path))
            pool.size = 1
            await until(lambda: pool.stats()["warm"] == 1)
            for answer in ("answering", "give_back"):
                async with pool.lease() as lease:
                    assert lease.take_warm(shape) is not None
                    pool.want(shape, lambda: plan("w", cwd=tmp_path))  # wakes the refill
                    await trio.testing.wait_all_tasks_blocked()
                    stats = pool.stats()
                    assert stats["warm"] == stats["spawning"] == 0
                    if answer == "answering":
                        lease.answering()
                    else:
                        await lease.give_back(good=False)
                    await until(lambda: pool.stats()["warm"] == 1)
                    await lease.give_back(good=False)
            assert pool.stats()["warm_started"] == 3


async def test_a_turn_defers_its_refill_no_longer_than_refill_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "REFILL_WAITS", 0.0)
    with trio.fail_after(GUARD):
        async with running(new_pool()) as pool:
            shape = plan("w", cwd=tmp_path).inv.process_key
            pool.want(shape, lambda: plan("w", cwd=tmp_path))
            pool.size = 1
            await until(lambda: pool.stats()["warm"] == 1)
            async with pool.lease() as lease:
                assert lease.take_warm(shape) is not None
                # No output yet, and none comes: the refill goes at the deadline anyway.
                await until(lambda: pool.stats()["warm"] == 1)
                await lease.give_back(good=False)
