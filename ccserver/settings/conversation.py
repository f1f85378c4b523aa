"""The ``conversation`` section: how long conversations live, and where they are stored.

Its own module because the store's settings (a file, or a Redis server that several
gateways share) grew beside the conversation limits.
"""

from __future__ import annotations

import attrs

from .fields import NON_NEGATIVE, POSITIVE, check, setting

__all__ = ["ConversationSettings"]

STORE_URL = check(lambda v: v == "" or v.startswith(("redis://", "rediss://", "unix://")),
                  'must be "" or a redis://, rediss:// or unix:// URL')


@attrs.frozen(kw_only=True)
class ConversationSettings:
    max_history_messages: int = setting(
        500, "messages one conversation may hold; a longer history gets 400", POSITIVE
    )
    session_timeout_minutes: float = setting(
        1440.0, "idle conversations are deleted after this", POSITIVE
    )
    busy_wait_seconds: float = setting(
        30.0, "a turn waits this long for the conversation's running turn, then 409",
        NON_NEGATIVE,
    )
    isolate_workspaces: bool = setting(
        True, "each conversation works in its own subdirectory of the workspace"
    )
    store_path: str = setting("", '"" = <data_dir>/conversations.sqlite3')
    store_url: str = setting(
        "", '"" = the SQLite file; redis://host:port/db = a Redis (or Valkey) that several '
        "gateways share (README, Several gateways)", STORE_URL,
    )
    store_timeout_seconds: float = setting(
        2.0, "a shared-store command unanswered this long fails its request with 503",
        POSITIVE,
    )
    lock_seconds: float = setting(
        30.0, "a shared store's conversation lock expires this long after its gateway last "
        "renewed it (a crashed gateway's locks free themselves)", POSITIVE,
    )
