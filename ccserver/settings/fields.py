"""How a setting is declared: its default, what it means, and the checks on its value.

The meaning lives on the field so the README's table is generated from the code; the
checks run when a section is built, so a bad value stops start-up naming the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = [
    "ENV_NAMES", "NON_EMPTY", "NON_NEGATIVE", "PORT", "POSITIVE", "Validator", "check", "setting",
]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def check(ok: Callable[[Any], bool], reason: str) -> Validator:
    def validate(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not ok(value):
            raise ValueError(f"{attribute.name}: {reason}, got {value!r}")

    return validate


POSITIVE = check(lambda v: v > 0, "must be > 0")  # `not v > 0` also rejects NaN
NON_NEGATIVE = check(lambda v: v >= 0, "must be >= 0")
PORT = check(lambda v: 0 <= v <= 65535, "must be in 0..65535")
NON_EMPTY = check(lambda v: bool(v.strip()), "must not be empty")
ENV_NAMES = check(lambda m: all(k and "=" not in k for k in m), "keys must be variable names")


def setting(default: Any, meaning: str, *checks: Validator, **kw: Any) -> Any:
    return attrs.field(default=default, validator=list(checks), metadata={"meaning": meaning}, **kw)
