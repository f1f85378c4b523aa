"""Stored Responses: which conversation a response continues, and keeping a finished one.

Every Responses surface (HTTP and the WebSocket mode) uses these: a response is stored
with its conversation (unless ``store`` is false), GET returns it, and
``previous_response_id`` continues that conversation's CLI session. Hosted tools a request
listed are dropped by ccproto (the gateway cannot run them); `dropped_tools` says so.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping

import trio

from ccproto import ResponseBuilder, ResponsesRequest, dumps, excerpt

from ..conversations.records import Records
from ..conversations.store import ConversationStore
from ..errors import ConversationNotFound, PreviousResponseNotFound
from .run import Run

__all__ = ["DROPPED_TOOLS_HEADER", "continued_conversation", "dropped_tools", "new_builder",
           "save_response"]

log = logging.getLogger("ccserver.responses")

#: Names the hosted tools a request listed and the gateway dropped (README, Responses API).
DROPPED_TOOLS_HEADER = "x-ccserver-dropped-tools"


def dropped_tools(request: ResponsesRequest) -> list[tuple[str, str]]:
    """The response header naming the hosted tools ``request`` listed that were dropped
    (none when there were none), and a log line: a client that expected them to run
    should find out why they did not."""
    if not request.dropped_tools:
        return []
    value = ",".join(request.dropped_tools)  # labels are header-safe (ccproto sanitises)
    log.info("dropped tools the gateway cannot run: %s", value)
    return [(DROPPED_TOOLS_HEADER, value)]


async def continued_conversation(records: Records, request: ResponsesRequest,
                                 local: Mapping[str, str] | None = None) -> str | None:
    """The conversation ``request`` continues: its ``previous_response_id``'s, or its
    ``conversation``; None starts (or matches) one. Checked before any CLI runs.

    ``local`` maps ids of this WebSocket's ``store: false`` responses to conversations.
    """
    previous = request.previous_response_id
    if previous is None:
        return request.conversation
    conversation_id = (local or {}).get(previous)
    if conversation_id is None:
        found = await records.store.get_response(previous)
        if found is None:
            raise PreviousResponseNotFound(f"No response found with id {excerpt(previous)}")
        conversation_id = found[0]
    try:
        await records.get(conversation_id)
    except ConversationNotFound:
        raise PreviousResponseNotFound(f"Response {excerpt(previous)} belongs to a conversation "
                                       "that has expired or was deleted") from None
    return conversation_id


def new_builder(request: ResponsesRequest, run: Run, include_reasoning: bool) -> ResponseBuilder:
    return ResponseBuilder(
        response_id=f"resp_{uuid.uuid4().hex}", created_at=int(time.time()), model=run.model,
        request=request, conversation_id=run.conversation_id,
        include_reasoning=include_reasoning,
    )


async def save_response(store: ConversationStore, builder: ResponseBuilder, run: Run) -> None:
    """Store a finished response, before its last event goes out: a client may continue
    from it (previous_response_id) the moment it has it."""
    if builder.request.store:
        with trio.CancelScope(shield=True):  # the turn happened: keep its record
            await store.put_response(builder.response_id, run.conversation_id,
                                        builder.created_at, dumps(builder.response()).decode())
