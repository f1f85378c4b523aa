"""The conversation store's interface: what is stored, and the operations on it.

Conversations must outlive the server process (a restarted gateway continues them), so
every change is committed before the request that made it answers. The interface is what
`Records` needs and no more, so a shared store for several gateways can stand in
for the embedded one (sqlite.py) later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from ..cluster.locks import Reads

__all__ = ["Conversation", "ConversationStore", "CountedRead", "StoredMessage"]


@attrs.frozen(kw_only=True)
class Conversation:
    id: str
    session_id: str  # the CLI's session; the gateway chooses it
    cwd: str  # the CLI resumes a session only from its own working directory
    model: str | None
    system_prompt: str | None
    metadata: dict[str, str] = attrs.field(factory=dict, hash=False)
    created_at: float
    updated_at: float
    turns: int = 0  # completed turns
    #: Digest of the whole history (ccproto.history.fingerprint); None = never matched.
    fingerprint: str | None = None
    #: Whether the CLI session exists: the next turn resumes it rather than starting it.
    started: bool = False


@attrs.frozen(kw_only=True)
class StoredMessage:
    role: str
    #: ccproto.HistoryMessage parts: [[kind, value], ...]
    parts: tuple[tuple[str, str], ...]
    created_at: float


class CountedRead(Reads, Protocol):
    """`ConversationStore.get_counted` done along with taking the conversation's shared
    lock (one round trip for both); ``value`` is its answer once the take succeeded."""

    value: tuple[Conversation | None, int] | None


class ConversationStore(Protocol):
    async def open(self) -> None: ...
    async def put(self, conversation: Conversation) -> None: ...
    async def get(self, conversation_id: str) -> Conversation | None: ...
    async def find(self, fingerprint: str) -> Conversation | None: ...
    async def page(
        self, *, limit: int, after: str | None
    ) -> tuple[list[Conversation], bool]: ...
    async def expired(self, before: float) -> list[Conversation]: ...
    async def messages(self, conversation_id: str) -> list[StoredMessage]: ...
    async def get_counted(self, conversation_id: str) -> tuple[Conversation | None, int]: ...
    def counted_read(self, conversation_id: str) -> CountedRead | None: ...
    async def add_turn(
        self, conversation: Conversation, messages: Sequence[StoredMessage]
    ) -> None: ...
    async def delete(self, conversation_id: str) -> bool: ...
    async def close(self) -> None: ...
    async def put_response(self, response_id: str, conversation_id: str, created_at: float,
                           body: str) -> None: ...
    async def get_response(self, response_id: str) -> tuple[str, str] | None: ...
