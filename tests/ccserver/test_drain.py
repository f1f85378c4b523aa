"""ccserver.edge.drain: the end of the shutdown grace, as the surfaces see it."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from ccproto import TextDelta, TurnEvent, TurnFailed
from ccserver.edge.drain import Drain
from ccserver.errors import ShuttingDown

pytestmark = [pytest.mark.reliability]

__all__: list[str] = []


async def test_a_pending_receive_ends_in_shutting_down_when_cut() -> None:
    drain = Drain()
    events, receive = trio.open_memory_channel[TurnEvent](1)
    guarded = drain.guard(receive.receive)
    got: list[TurnEvent] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                got.append(await guarded())

            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            drain.cut()
    assert len(got) == 1 and type(got[0]) is TurnFailed
    assert isinstance(got[0].error, ShuttingDown)
    # Once cut, always cut, even with an event waiting.
    events.send_nowait(TextDelta(text="late"))
    assert type(await guarded()) is TurnFailed


async def test_before_the_cut_events_pass_through() -> None:
    drain = Drain()
    events, receive = trio.open_memory_channel[TurnEvent](1)
    events.send_nowait(TextDelta(text="hi"))
    assert await drain.guard(receive.receive)() == TextDelta(text="hi")
    assert not drain.is_cut
