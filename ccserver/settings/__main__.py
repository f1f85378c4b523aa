"""``python -m ccserver.settings``: the README's configuration table, from the code."""

from __future__ import annotations

from . import settings_table


def markdown_table() -> str:
    lines = ["| key | env | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{r.key}` | `{r.env}` | `{r.default}` | {r.meaning} |"
              for r in settings_table()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
