"""The fake's request log: kept in memory for ``GET /_fake/requests`` and, optionally, appended
to a JSON-lines file so a test in another process can read it without speaking HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["RequestLog", "mask_headers"]

_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization"})


def mask_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lowercased header map; secrets keep 4 characters so tests can tell keys apart."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in _SECRET_HEADERS:
            scheme, _, token = value.rpartition(" ")
            value = f"{scheme} {token[:4]}***".lstrip()
        # Repeated headers are folded as RFC 9110 allows.
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


class RequestLog:
    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._entries: list[dict[str, Any]] = []
        self._seq = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def record(self, entry: dict[str, Any]) -> None:
        self._seq += 1
        entry = {"seq": self._seq, **entry}
        self._entries.append(entry)
        if self._path is not None:
            # One write per line and a close per request: a reader polling the file sees whole
            # lines in arrival order, at the cost of a syscall burst that a fake can afford.
            with self._path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        if self._path is not None:
            self._path.write_text("", encoding="utf-8")
        return count
