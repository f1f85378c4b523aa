"""Plan the fake's answer to a request: pick the scripted step, decide whether its fault
applies, and build the `Reply` the server executes.

Everything here is synchronous and deterministic except the message/tool ids, which come from the
caller-supplied ``new_id``. The only state is the `FaultLedger` behind ``times: N``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .blocks import build_blocks
from .reply import Ending, Reply, error_reply, json_reply
from .script import Selection, find_selection
from .sse import stream_frames
from .steps import DEFAULT_TEXT, DirectiveError, Step, split_words

__all__ = ["FaultLedger", "estimate_tokens", "plan_count_tokens", "plan_messages"]

_TITLE_TEXT = '{"title": "Fake session"}'


class FaultLedger:
    """Counts faults served per (session, directive, step) so ``times: N`` can stop failing.

    This is the fake's only state; it is keyed by the CLI's session header so concurrent tests
    (each its own CLI process, hence session) never share a counter.
    """

    def __init__(self) -> None:
        self._served: dict[tuple[str, str, int], int] = {}

    def take(self, session: str, selection: Selection) -> bool:
        """Return True when this request should get the step's fault (and count it)."""
        times = selection.step.times
        if times is None:
            return True
        key = (session, selection.key, selection.index)
        served = self._served.get(key, 0)
        if served >= times:
            return False
        self._served[key] = served + 1
        return True


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """A deterministic length-based guess (about 4 characters per token)."""
    size = sum(len(json.dumps(body.get(name, ""))) for name in ("system", "messages", "tools"))
    return max(1, size // 4)


def plan_count_tokens(body: Mapping[str, Any]) -> Reply:
    return json_reply(200, {"input_tokens": estimate_tokens(body)})


def plan_messages(
    body: Mapping[str, Any], session: str, ledger: FaultLedger, new_id: Callable[[str], str]
) -> Reply:
    """Plan the reply to ``POST /v1/messages``."""
    stream = body.get("stream") is True
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and "format" in output_config:
        # Side request (session title): answer it, but never let it apply or use up a fault.
        return _message_reply(body, Step(chunks=split_words(_TITLE_TEXT)), stream, new_id)
    try:
        selection = find_selection(body.get("messages"))
    except DirectiveError as exc:
        return error_reply(400, f"fake directive: {exc}")
    if selection is None:
        return _message_reply(body, Step(chunks=split_words(DEFAULT_TEXT)), stream, new_id)
    step = selection.step
    if step.error is not None and ledger.take(session, selection):
        err = step.error
        return attrs.evolve(
            error_reply(err.status, err.message, err.type, err.headers),
            first_delay=step.first_delay_ms / 1000,
        )
    if step.hang == "before_headers" and ledger.take(session, selection):
        return Reply(status=0, headers=(), ending=Ending.HANG_BEFORE_HEADERS)
    # The remaining faults only make sense for a stream; the CLI's non-streaming fallback
    # request after a broken stream is therefore served in full.
    stream_fault = step.hang not in (None, "before_headers") or step.drop_after is not None
    stream_fault = stream_fault or step.midstream_error is not None
    faulty = stream and stream_fault and ledger.take(session, selection)
    return _message_reply(body, step, stream, new_id, faulty=faulty)


def _message_reply(
    body: Mapping[str, Any],
    step: Step,
    stream: bool,
    new_id: Callable[[str], str],
    *,
    faulty: bool = False,
) -> Reply:
    model = step.model or str(body.get("model") or "claude-fake")
    blocks = build_blocks(step, new_id)
    n_deltas = sum(len(b.deltas) for b in blocks)
    usage: dict[str, int] = {
        "input_tokens": estimate_tokens(body),
        "output_tokens": n_deltas,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        **step.usage,
    }
    message: dict[str, Any] = {
        "id": new_id("msg_fake_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [b.final for b in blocks],
        "stop_reason": step.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
    first_delay = step.first_delay_ms / 1000
    if not stream:
        return attrs.evolve(json_reply(200, message), first_delay=first_delay)
    frames, ending = stream_frames(message, blocks, step, faulty)
    headers = (("content-type", "text/event-stream"), ("cache-control", "no-cache"))
    return Reply(status=200, headers=headers, frames=frames, first_delay=first_delay, ending=ending)
