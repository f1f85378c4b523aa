"""One turn for any surface (Chat Completions, Responses, both WebSockets): check and plan
the request, take its conversation's turn, wait for admission, run the CLI turn with
retries, and hand the surface its events. Receives a frozen `TurnServices`, never the
gateway.
"""

from __future__ import annotations

__all__: list[str] = []
