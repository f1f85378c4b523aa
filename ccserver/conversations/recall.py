"""What this server process remembers of the conversations it served, so that their next
turn here reads neither the disk nor the store for it.

Two things, both lost on a restart (the next turn then reads, as it always did):

* clean transcripts: a conversation left after a turn that completed or was rolled back
  (or made just now for a warm process) has its working directory, and a transcript that
  holds no prompt past its completed turns; `Records.ready` then skips the mkdir and the
  roll-back read;
* fingerprint states: the hash state of a conversation's history after the last turn
  recorded here, so that the next turn's fingerprint takes only its new messages, not a
  read of the whole history (`ccproto.Fingerprint`).

Each is valid only for the state it was taken in (a completed-turn count, an
``updated_at``): another gateway's turn, or a removal, makes it stale, and `forget` drops it.
"""

from __future__ import annotations

from cachetools import LRUCache

from ccproto import Fingerprint

from .store import Conversation

__all__ = ["Recall"]


class Recall:
    def __init__(self, *, max_digests: int = 8192) -> None:
        #: Conversation id -> completed turns its transcript holds, as this process left it.
        self._clean: dict[str, int] = {}
        #: Conversation id -> (updated_at, fingerprint state); bounded: one pushed out is
        #: read once more.
        self._digests: LRUCache[str, tuple[float, Fingerprint]] = LRUCache(maxsize=max_digests)

    def left_clean(self, conversation_id: str, turns: int) -> None:
        self._clean[conversation_id] = turns

    def take_clean(self, c: Conversation) -> bool:
        """Whether ``c``'s transcript is as this process left it; the mark is used up (the
        turn that asks is about to write)."""
        return self._clean.pop(c.id, None) == c.turns

    def digest(self, c: Conversation) -> Fingerprint | None:
        """A copy of ``c``'s fingerprint state, if it was taken in ``c``'s current state."""
        kept = self._digests.get(c.id)
        return kept[1].copy() if kept is not None and kept[0] == c.updated_at else None

    def keep_digest(self, c: Conversation, digest: Fingerprint) -> None:
        self._digests[c.id] = (c.updated_at, digest)

    def forget(self, conversation_id: str) -> None:
        self._clean.pop(conversation_id, None)
        self._digests.pop(conversation_id, None)
