"""What a turn is claimed with: a new conversation's `Identity`, and the `Ticket` that one
turn of one conversation holds under its lock."""

from __future__ import annotations

from typing import NamedTuple

import attrs

from ccproto import HistoryMessage, SessionPlan

from .store import Conversation

__all__ = ["Identity", "Ticket"]


class Identity(NamedTuple):
    """Who a new conversation is, chosen before it exists (a warm process is started as it)."""

    conversation_id: str
    session_id: str
    cwd: str
    #: ``cwd`` is its own (``isolate_workspaces``), not shared: removable if it never comes.
    own_cwd: bool = False


@attrs.define(kw_only=True)
class Ticket:
    """One turn of one conversation, held under that conversation's lock."""

    conversation: Conversation
    session: SessionPlan
    #: The request's messages the conversation does not hold yet (its new user turn).
    new_turns: tuple[HistoryMessage, ...]
    completed: bool = False
    #: The conversation was made for this turn: unless the turn completes, it goes.
    new_conversation: bool = False
