"""`held_sse_stream`'s status hold and keep-alives, on trio's autojump clock.

A fake turn delivers its events at chosen (virtual) times and a fake ``send`` records what
went out and when. Every test asks for ``autojump_clock`` (pytest-trio runs a test on a
clock only when the test itself takes it). The clock is virtual, so the times asserted are the deadlines
themselves, exact on any machine, however slow or busy.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import pytest
import trio

from ccproto import TextDelta, TokenUsage, TurnEvent, TurnFailed, TurnFinished
from ccserver.errors import CLITimeout
from ccserver.http.sse import held_sse_stream, hold_left

__all__: list[str] = []

# The guard counts virtual seconds here, and a stream may run for minutes of them; a hang
# still fails at once, since the clock jumps straight to the guard's deadline.
pytestmark = pytest.mark.fail_after(3600)

HOLD, KEEPALIVE = 40.0, 15.0  # the hold longer than the keep-alive, as by default

FINISHED = TurnFinished(stop_reason="end_turn", usage=TokenUsage(), session_id=None,
                        cost_usd=None, result_text=None)
FAILED = TurnFailed(error=CLITimeout("Claude Code went quiet"))


async def stream(script: list[tuple[float, TurnEvent]]) -> list[tuple[float, str]]:
    """Run ``held_sse_stream`` over ``script`` (each event's delay after the previous one);
    returns what was sent, as (seconds since the start, what), having checked that the
    status it returned is the one it sent."""
    start = trio.current_time()
    sent: list[tuple[float, str]] = []
    to_stream, events = trio.open_memory_channel[TurnEvent](0)

    async def turn() -> None:
        async with to_stream:
            for delay, event in script:
                await trio.sleep(delay)
                await to_stream.send(event)

    async def send(message: MutableMapping[str, Any]) -> None:
        now = trio.current_time() - start
        if message["type"] == "http.response.start":
            sent.append((now, f"status {message['status']}"))
        elif message["body"]:
            sent.append((now, message["body"].decode()))

    async def render(event: TurnEvent) -> tuple[bytes, bool]:
        end = type(event) in (TurnFinished, TurnFailed)
        return type(event).__name__.encode(), end

    async with trio.open_nursery() as nursery:
        nursery.start_soon(turn)
        returned = await held_sse_stream(
            events.receive, send, [], hold_seconds=HOLD, keepalive_seconds=KEEPALIVE,
            start=lambda: b"start", keepalive=lambda: b"keepalive", render=render)
        nursery.cancel_scope.cancel()
    assert sent[0][1] == f"status {returned}"
    return sent


async def test_a_failure_after_a_silence_past_the_keepalive_keeps_its_status(
        autojump_clock: trio.abc.Clock) -> None:
    # Longer than the keep-alive interval, within the hold: nothing has been sent, so the
    # failure is still an HTTP error the SDKs raise on (and retry) by status.
    sent = await stream([(HOLD - 1, FAILED)])
    [(when, status), (_, body)] = sent
    assert (when, status) == (HOLD - 1, "status 504")
    assert json.loads(body)["error"]["code"] == "timeout"


async def test_first_content_within_the_hold_commits_the_stream_at_once(
        autojump_clock: trio.abc.Clock) -> None:
    sent = await stream([(HOLD - 1, TextDelta("hi")), (0, FINISHED)])
    # The opening and the first content in one write: the client's first token is one
    # packet away, not two.
    assert sent == [(HOLD - 1, "status 200"), (HOLD - 1, "startTextDelta"),
                    (HOLD - 1, "TurnFinished")]


async def test_silence_past_the_hold_commits_a_200_then_keepalives_follow(
        autojump_clock: trio.abc.Clock) -> None:
    # No content for longer than the hold: the 200 and the opening go out when it ends,
    # then a keep-alive after each keep-alive interval of silence; a failure after the
    # commit is the surface's in-stream error.
    sent = await stream([(HOLD + 2.5 * KEEPALIVE, FAILED)])
    assert sent == [(HOLD, "status 200"), (HOLD, "start"),
                    (HOLD + KEEPALIVE, "keepalive"), (HOLD + 2 * KEEPALIVE, "keepalive"),
                    (HOLD + 2.5 * KEEPALIVE, "TurnFailed")]


async def test_after_the_first_content_silence_gets_keepalives(
        autojump_clock: trio.abc.Clock) -> None:
    sent = await stream([(1, TextDelta("a")), (2.5 * KEEPALIVE, TextDelta("b")),
                         (KEEPALIVE - 1, FINISHED)])
    t = 1 + 2.5 * KEEPALIVE
    assert sent == [(1, "status 200"), (1, "startTextDelta"),
                    (1 + KEEPALIVE, "keepalive"), (1 + 2 * KEEPALIVE, "keepalive"),
                    (t, "TextDelta"), (t + KEEPALIVE - 1, "TurnFinished")]


async def test_the_status_hold_counts_from_the_request_s_arrival() -> None:
    # A request that waited 10 s for a CLI slot has 35 s of a 45 s hold left; one that
    # waited longer than the hold has none, and its stream commits at once.
    now = trio.current_time()
    assert hold_left(45.0, now - 10.0) == pytest.approx(35.0, abs=1.0)
    assert hold_left(45.0, now - 60.0) == 0.0
