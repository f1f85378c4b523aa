"""The conversation store and the rules that pick a conversation, without a CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from ccproto import HistoryMessage, InvalidRequestError, fingerprint, structure_request
from ccserver.conversations.expiry import Janitor
from ccserver.conversations.records import Records
from ccserver.conversations.registry import Conversations
from ccserver.conversations.sessions import SessionFiles
from ccserver.conversations.sqlite import SCHEMA_VERSION, SQLiteStore
from ccserver.conversations.store import Conversation, StoredMessage
from ccserver.errors import ConversationBusy, ConversationNotFound
from ccserver.settings.sections import ConversationSettings


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def make(tmp_path: Path, **settings: Any) -> tuple[Conversations, SQLiteStore, Clock]:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    await store.open()
    clock = Clock()
    records = Records(
        store, SessionFiles({"CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}),
        ConversationSettings(**settings), workspace=tmp_path / "ws",
        cli_version=lambda: "2.1.197", clock=clock)
    return Conversations(records), store, clock


def janitor(convs: Conversations) -> Janitor:
    async def nothing_to_stop(conversation_id: str) -> None:
        pass

    return Janitor(convs.records, convs.locks, on_remove=nothing_to_stop)


def request(*messages: dict[str, Any], conversation_id: str | None = None) -> Any:
    body: dict[str, Any] = {"messages": list(messages)}
    if conversation_id:
        body["conversation_id"] = conversation_id
    return structure_request(json.dumps(body).encode())


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


async def test_store_round_trip_pages_and_survives_reopening(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    for n in range(5):
        await store.put(Conversation(id=f"c{n}", session_id="s", cwd="/w", model=None,
                                     system_prompt=None, created_at=n, updated_at=n))
    await store.add_turn(await store.get("c1"),  # type: ignore[arg-type]
                         [StoredMessage(role="user", parts=(("text", "hi"),), created_at=1)])
    first, more = await store.page(limit=2, after=None)
    assert [c.id for c in first] == ["c4", "c3"] and more
    last, more = await store.page(limit=5, after="c3")
    assert [c.id for c in last] == ["c2", "c1", "c0"] and not more
    await store.close()
    reopened = SQLiteStore(tmp_path / "s.sqlite3")
    await reopened.open()
    # An update keeps the messages (a REPLACE would cascade-delete them).
    c1 = await reopened.get("c1")
    assert c1 is not None
    await reopened.put(attrs.evolve(c1, turns=3))
    assert [m.parts for m in await reopened.messages("c1")] == [(("text", "hi"),)]
    await reopened.put_response("resp_1", "c1", 1.0, "{}")
    assert await reopened.get_response("resp_1") == ("c1", "{}")
    assert await reopened.delete("c1") and not await reopened.delete("c1")
    assert await reopened.messages("c1") == []
    assert await reopened.get_response("resp_1") is None  # it continued a session now gone
    await reopened.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    sqlite3.connect(path).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="schema version"):
        await SQLiteStore(path).open()


async def test_new_then_matched_by_fingerprint_then_by_id(tmp_path: Path) -> None:
    convs, store, _ = await make(tmp_path)
    async with convs.claim_turn(request(user("one")), conversation_id=None, model="m") as t1:
        assert not t1.session.resume and t1.session.cwd.endswith(t1.conversation.id)
        await convs.records.complete(t1, "reply one", "m")
    cid = t1.conversation.id
    follow = request(user("one"), assistant("reply one"), user("two"))
    async with convs.claim_turn(follow, conversation_id=None, model="m") as t2:
        assert t2.conversation.id == cid and [t.text for t in t2.new_turns] == ["two"]
        await convs.records.complete(t2, "reply two", "m")
    async with convs.claim_turn(request(user("three")), conversation_id=cid, model="m") as t3:
        assert t3.conversation.id == cid
    # t3 never completed: nothing of it was stored.
    assert [m.role for m in await store.messages(cid)] == ["user", "assistant"] * 2
    with pytest.raises(ConversationNotFound):
        async with convs.claim_turn(request(user("x")), conversation_id="conv_nope", model="m"):
            pass


async def test_unknown_history_is_seeded_into_a_transcript(tmp_path: Path) -> None:
    convs, store, _ = await make(tmp_path)
    req = request(user("My name is Bob."), assistant("Hi Bob."), user("Name?"))
    async with convs.claim_turn(req, conversation_id=None, model="m") as ticket:
        assert ticket.session.resume
        path = convs.records.files.transcript(ticket.conversation.cwd, ticket.session.session_id)
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [line["type"] for line in lines] == ["user", "assistant"]
    # Not completed: the new conversation goes entirely, its seeded history with it.
    assert not path.exists() and not Path(ticket.conversation.cwd).exists()
    assert await store.get(ticket.conversation.id) is None
    assert await store.messages(ticket.conversation.id) == []


async def test_failed_turn_is_cut_from_the_transcript(tmp_path: Path) -> None:
    convs, _, _ = await make(tmp_path)
    req = request(user("a"), assistant("b"), user("c"))
    async with convs.claim_turn(req, conversation_id=None, model="m") as ticket:
        path = convs.records.files.transcript(ticket.conversation.cwd, ticket.session.session_id)
        seeded = path.read_bytes()
        with path.open("ab") as f:
            f.write(b'{"type":"queue-operation","operation":"enqueue","content":"c"}\n'
                    b'{"type":"user","message":{"role":"user","content":"c"}}\n')
    assert not path.exists() and seeded  # a failed first turn: the new conversation went
    # A completed turn's lines stay; a later failed one is cut after them.
    async with convs.claim_turn(req, conversation_id=None, model="m") as ticket:
        await convs.records.complete(ticket, "d", "m")
        path = convs.records.files.transcript(ticket.conversation.cwd, ticket.session.session_id)
        good = seeded + b'{"type":"queue-operation","operation":"enqueue"}\n{"type":"user"}\n'
        path.write_bytes(good)
    cid = ticket.conversation.id
    async with convs.claim_turn(request(user("e")), conversation_id=cid, model="m"):
        with path.open("ab") as f:
            f.write(b'{"type":"queue-operation","operation":"enqueue"}\n')
    assert path.read_bytes() == good


async def test_second_turn_waits_then_409(tmp_path: Path) -> None:
    convs, _, _ = await make(tmp_path, busy_wait_seconds=0.2)
    conversation = await convs.records.create(model=None, system_prompt=None, metadata={})
    order: list[str] = []

    async def hold(seconds: float) -> None:
        async with convs.claim_turn(request(user("1")), conversation_id=conversation.id, model="m"):
            order.append("first in")
            await trio.sleep(seconds)
        order.append("first out")

    async def follow() -> None:
        await trio.sleep(0.01)
        async with convs.claim_turn(request(user("2")), conversation_id=conversation.id, model="m"):
            order.append("second in")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, 0.1)  # shorter than the busy wait
        nursery.start_soon(follow)
    assert order == ["first in", "first out", "second in"]

    async def too_long() -> None:
        await trio.sleep(0.01)
        with pytest.raises(ConversationBusy):
            async with convs.claim_turn(request(user("3")), conversation_id=conversation.id,
                                  model="m"):
                pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, 0.5)
        nursery.start_soon(too_long)
        await trio.sleep(0.05)
        with pytest.raises(ConversationBusy):
            await janitor(convs).delete(conversation.id)


async def test_idle_conversations_expire_with_their_files(tmp_path: Path) -> None:
    convs, store, clock = await make(tmp_path, session_timeout_minutes=1)
    req = request(user("a"), assistant("b"), user("c"))
    async with convs.claim_turn(req, conversation_id=None, model="m") as ticket:
        await convs.records.complete(ticket, "d", "m")
    c = ticket.conversation
    path = convs.records.files.transcript(c.cwd, c.session_id)
    assert path.exists() and Path(c.cwd).is_dir()
    clock.now += 30
    assert await janitor(convs).sweep_expired() == 0
    clock.now += 31
    with pytest.raises(ConversationNotFound):  # expired counts as gone before the sweep
        await convs.records.get(c.id)
    assert await janitor(convs).sweep_expired() == 1
    assert await store.get(c.id) is None and not path.exists() and not Path(c.cwd).exists()


async def test_history_longer_than_the_limit_is_400(tmp_path: Path) -> None:
    convs, _, _ = await make(tmp_path, max_history_messages=2)
    with pytest.raises(InvalidRequestError, match="limit is 2"):
        async with convs.claim_turn(request(user("a"), assistant("b"), user("c")),
                              conversation_id=None, model="m"):
            pass


async def test_a_refused_turn_leaves_the_conversation_unlocked(tmp_path: Path) -> None:
    convs, _, _ = await make(tmp_path, max_history_messages=2)
    async with convs.claim_turn(request(user("a")), conversation_id=None, model="m") as ticket:
        await convs.records.complete(ticket, "b", "m")
    cid = ticket.conversation.id
    with pytest.raises(InvalidRequestError):  # a third message is over the limit
        async with convs.claim_turn(request(user("c")), conversation_id=cid, model="m"):
            pass
    await janitor(convs).delete(cid)  # not 409: the refused turn released its lock
    with pytest.raises(ConversationNotFound):
        await convs.records.get(cid)


async def test_a_failed_first_turn_leaves_nothing_a_failed_later_turn_keeps_it(
        tmp_path: Path) -> None:
    convs, store, _ = await make(tmp_path)
    identity = convs.records.new_identity()  # as a warm process would have made it
    Path(identity.cwd).mkdir(parents=True)
    with pytest.raises(RuntimeError):
        async with convs.claim_turn(request(user("a")), conversation_id=None, model="m",
                                    identity=identity) as ticket:
            assert ticket.conversation.id == identity.conversation_id
            assert await store.get(identity.conversation_id) is not None
            raise RuntimeError("the CLI failed")  # or 429, 503, a client gone
    assert (await store.page(limit=10, after=None))[0] == []
    assert not Path(identity.cwd).exists()
    assert not any((tmp_path / "ws").iterdir())
    # A later turn that fails keeps the conversation (and its directory).
    async with convs.claim_turn(request(user("a")), conversation_id=None, model="m") as ticket:
        await convs.records.complete(ticket, "b", "m")
    cid = ticket.conversation.id
    with pytest.raises(RuntimeError):
        async with convs.claim_turn(request(user("c")), conversation_id=cid, model="m"):
            raise RuntimeError("the CLI failed")
    assert (await convs.records.get(cid)).turns == 1 and Path(ticket.conversation.cwd).is_dir()


async def test_a_turn_recorded_here_fingerprints_the_next_without_reading_the_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    convs, store, clock = await make(tmp_path)
    reads: list[str] = []
    read = store.messages

    async def counted(conversation_id: str) -> list[StoredMessage]:
        reads.append(conversation_id)
        return await read(conversation_id)

    monkeypatch.setattr(store, "messages", counted)
    async with convs.claim_turn(request(user("one")), conversation_id=None, model="m") as t1:
        await convs.records.complete(t1, "reply one", "m")
    clock.now += 1
    async with convs.claim_turn(request(user("two")), conversation_id=t1.conversation.id,
                                model="m") as t2:
        await convs.records.complete(t2, "reply two", "m")
    assert reads == [t1.conversation.id]  # the first turn's read, none for the second
    history = [HistoryMessage(m.role, m.parts) for m in await read(t2.conversation.id)]
    assert t2.conversation.fingerprint == fingerprint(None, history)
    # Another process (a restart, another gateway) reads the history once.
    other = Records(store, convs.records.files, convs.records.settings,
                    workspace=tmp_path / "ws", cli_version=lambda: "2.1.197", clock=clock)
    clock.now += 1
    again = Conversations(other)
    async with again.claim_turn(request(user("three")), conversation_id=t1.conversation.id,
                                model="m") as t3:
        await other.complete(t3, "reply three", "m")
    assert reads == [t1.conversation.id] * 2
    history = [HistoryMessage(m.role, m.parts) for m in await read(t3.conversation.id)]
    assert t3.conversation.fingerprint == fingerprint(None, history)


async def test_a_transcript_this_process_left_clean_is_not_read_again(tmp_path: Path) -> None:
    convs, store, clock = await make(tmp_path)
    files = convs.records.files
    checked: list[str] = []
    roll_back = files.roll_back

    async def counted(cwd: str, session_id: str, good_turns: int) -> None:
        checked.append(session_id)
        await roll_back(cwd, session_id, good_turns)

    files.roll_back = counted  # type: ignore[method-assign]
    identity = convs.records.new_identity()  # as a warm process would have made it
    Path(identity.cwd).mkdir(parents=True)
    async with convs.claim_turn(request(user("a")), conversation_id=None, model="m",
                                identity=identity) as ticket:
        assert checked == []  # made just now for a process that was sent nothing yet
        await convs.records.complete(ticket, "b", "m")
    c = ticket.conversation
    path = files.transcript(c.cwd, c.session_id)
    good = b'{"type":"queue-operation","operation":"enqueue"}\n{"type":"user"}\n'
    path.parent.mkdir(parents=True)
    path.write_bytes(good)  # what the CLI wrote for the completed turn
    with pytest.raises(RuntimeError):
        async with convs.claim_turn(request(user("c")), conversation_id=c.id, model="m"):
            assert checked == []  # its last turn completed here: clean
            with path.open("ab") as f:
                f.write(b'{"type":"queue-operation","operation":"enqueue"}\n')
            raise RuntimeError("the CLI failed")
    assert path.read_bytes() == good and checked == [c.session_id]  # rolled back once
    async with convs.claim_turn(request(user("c")), conversation_id=c.id, model="m"):
        assert checked == [c.session_id]  # rolled back here: clean again
    assert checked == [c.session_id] * 2  # this one never completed: rolled back too
    # A server killed mid-turn leaves half a turn; restarted, it knows nothing of it, so
    # its first turn of the conversation checks and cuts it.
    with path.open("ab") as f:
        f.write(b'{"type":"queue-operation","operation":"enqueue"}\n{"type":"user"}\n')
    restarted = Conversations(Records(store, files, convs.records.settings,
                                      workspace=tmp_path / "ws",
                                      cli_version=lambda: "2.1.197", clock=clock))
    async with restarted.claim_turn(request(user("c")), conversation_id=c.id, model="m"):
        assert path.read_bytes() == good and checked == [c.session_id] * 3

async def test_a_new_conversation_without_a_warm_process_gets_its_directory(
        tmp_path: Path) -> None:
    convs, _, _ = await make(tmp_path)
    async with convs.claim_turn(request(user("a")), conversation_id=None, model="m") as ticket:
        assert Path(ticket.conversation.cwd).is_dir()
