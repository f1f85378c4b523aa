"""A scriptable fake of the Anthropic Messages API, good enough for the real ``claude`` CLI.

Run it with ``python -m ccserver.fakeapi --port 0`` and point the CLI at it with
``ANTHROPIC_BASE_URL``; script replies with ``[[fake {...}]]`` in the prompt (see `script`
for how a directive is found and `steps` for what a step may contain).
"""

from __future__ import annotations

from .plan import FaultLedger, plan_count_tokens, plan_messages
from .reply import Ending, Frame, Reply
from .script import Selection, find_selection
from .server import FakeAPI, serve
from .steps import DEFAULT_TEXT, DirectiveError, Step, parse_step

__all__ = [
    "DEFAULT_TEXT",
    "DirectiveError",
    "Ending",
    "FakeAPI",
    "FaultLedger",
    "Frame",
    "Reply",
    "Selection",
    "Step",
    "find_selection",
    "parse_step",
    "plan_count_tokens",
    "plan_messages",
    "serve",
]
