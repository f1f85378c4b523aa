"""One turn for any surface.

``run`` (`open_turn`, `Run`), ``planning`` (the plan before the conversation),
``attempts`` (the retry loop, which records a finished turn), ``retry`` (the policy), and
what a turn needs around it: ``context``, ``images``, ``fetch``, ``cache``,
``stored_responses``.
"""

from __future__ import annotations

__all__: list[str] = []
