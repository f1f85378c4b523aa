"""Which CLI process serves which turn, and the cap on processes.

``pooled`` (one process, its shape), ``shapes`` (the shapes kept warm), ``books`` (every
decision, without I/O), ``host`` (start, retire, kill, reap), ``lease`` (one turn's hold),
``pool`` (composes them; the background upkeep), ``admission`` (the cap on running turns
and its queue). Knows no conversation: core wires the two together.
"""

from __future__ import annotations

__all__: list[str] = []
