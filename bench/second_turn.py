"""Second turn of a conversation: gateway (bound process) vs direct `claude -p --resume`.

Each pair: a first turn through the gateway (new conversation), then, once the machine is
quiet, its second turn with the same ``conversation_id`` (the process that answered turn 1
is still bound to it and gets the turn on stdin). The direct side runs turn 1 as a one-shot
with ``--session-id`` and turn 2 as a cold one-shot with ``--resume <session>`` in the same
working directory: what a user of the bare CLI does. Timed from request sent / CLI spawned
to the first text delta, and to the complete answer (`[DONE]` / the CLI's result line).

Usage: .venv/bin/python -m bench.second_turn [pairs]
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from bench.harness import Report, arg, fake_prompt, median, run_direct, settle, stack, stream_chat

__all__ = ["main", "run"]

TURN1 = fake_prompt({"text": "First answer: noted."}, "Remember the number 7.")
TURN2 = fake_prompt({"text": "Second answer: it was 7."}, "Which number was it?")


def run(argv: Sequence[str] = ()) -> Report:
    pairs = arg(argv, 0, 8)
    cols: dict[str, list[float]] = {k: [] for k in ("g_first", "g_done", "d_first", "d_done")}
    first_ratios: list[float] = []
    done_ratios: list[float] = []
    bound = 0
    with stack() as st, st.gateway("gw") as (_gw, client):
        settle(client)
        for i in range(pairs + 1):  # pair 0 warms caches on both sides and is dropped
            g1 = stream_chat(client, TURN1)
            if g1.error:
                raise RuntimeError(f"gateway turn 1: {g1.error}")
            before = settle(client)
            g2 = stream_chat(client, TURN2, conversation_id=g1.conversation_id)
            if g2.error or g2.conversation_id != g1.conversation_id:
                raise RuntimeError(f"gateway turn 2: {g2.error or g2.conversation_id}")
            after = settle(client, warm_age=0)
            client.delete(f"/conversations/{g1.conversation_id}")
            session, name = str(uuid.uuid4()), f"direct{i}"
            d1 = run_direct(st.direct(TURN1, session_id=session, name=name))
            settle(client)
            d2 = run_direct(st.direct(TURN2, session_id=session, resume=True, name=name))
            if d1.error or d2.error:
                raise RuntimeError(f"direct: {d1.error or d2.error}")
            settle(client)
            if i == 0:
                continue
            bound += after["pool"]["bound_hits"] - before["pool"]["bound_hits"]
            for key, value in (("g_first", g2.first), ("g_done", g2.done),
                               ("d_first", d2.first), ("d_done", d2.done)):
                cols[key].append(value)
            first_ratios.append(g2.first / d2.first)
            done_ratios.append(g2.done / d2.done)
        histories = _turn2_history_lengths(st.fake.messages_requests())
    ratio = median(done_ratios)
    report = Report(
        title="Second turn: gateway (bound process) / direct `claude -p --resume`",
        command=f".venv/bin/python -m bench.second_turn {pairs}",
        headline=f"{ratio:.3f} to the complete answer, {median(first_ratios):.3f} to the "
                 f"first token (medians of {pairs} pair ratios; goal ≤ 0.2: "
                 f"{'met' if ratio <= 0.2 else 'NOT met'})",
        header=("side", "first token (median)", "complete answer (median)", "complete (max)"),
    )
    for label, side in (("gateway, same conversation_id", "g"), ("direct --resume", "d")):
        first, done = cols[f"{side}_first"], cols[f"{side}_done"]
        report.rows.append((label, f"{median(first) * 1000:.0f} ms",
                            f"{median(done) * 1000:.0f} ms", f"{max(done) * 1000:.0f} ms"))
    report.notes.append("messages in the upstream requests of turn 2 (both sides): "
                        f"{sorted(set(histories))}; 3+ means turn 1 was really continued")
    if min(histories, default=0) < 3:
        report.notes.append("WARNING: some turn 2 did not carry turn 1's history upstream")
    report.notes.append(f"turn 2 went to the conversation's bound process in {bound}/{pairs} "
                        "measured pairs (pool bound_hits)")
    return report


def _turn2_history_lengths(requests: list[dict[str, Any]]) -> list[int]:
    """How many messages each turn-2 upstream request carried (title requests left out)."""
    lengths = []
    for entry in requests:
        body = entry.get("body")
        if not isinstance(body, dict) or not body.get("stream"):
            continue
        messages = body.get("messages") or []
        if messages and "Which number" in json.dumps(messages[-1]):
            lengths.append(len(messages))
    return lengths


def main(argv: Sequence[str] | None = None) -> None:
    print(run(sys.argv[1:] if argv is None else argv).text())


if __name__ == "__main__":
    main()
