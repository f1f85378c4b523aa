"""The one door for client JSON: bytes or text become a JSON object or an InvalidRequestError.

Every surface (chat, Responses, conversations, WebSocket frames) decodes what a client
sent through `load_object` and nothing else, so what later code may assume is said once:

* The value is strict JSON: ``NaN`` and ``Infinity`` (which Python's json accepts) are
  refused, as is anything that is not UTF-8.
* It nests at most `MAX_DEPTH` levels. ``json.loads`` itself recurses, and raises
  RecursionError near Python's recursion limit; that is caught, and anything shallower
  than that but deeper than the limit is refused by an iterative walk before any other
  code (cattrs, the cache's fingerprint, ``json.dumps`` of the CLI's stdin) recurses
  through it.
* No string, key or value holds a lone surrogate. JSON's ``"\\ud800"`` escape decodes to
  one in Python, and it cannot be encoded as UTF-8: the CLI's stdin line, the store and
  every response would fail on it later.

`excerpt` is the other half of hostile input: an error message quotes at most a short,
escaped prefix of what the client sent, never all of it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidRequestError

__all__ = ["MAX_DEPTH", "excerpt", "load_object"]

#: Nesting levels a body may have: real requests (content parts, JSON schemas of tools
#: and response formats) stay far below it; recursive code after parsing stays safe.
MAX_DEPTH = 64

_EXCERPT = 64


def excerpt(value: str, limit: int = _EXCERPT) -> str:
    """``value`` quoted for an error message: its first ``limit`` characters, repr-escaped,
    and an ellipsis when there was more."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _utf8(text: str) -> bool:
    if text.isascii():  # the common case, and cheap
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(key: str) -> str:
    return repr(key[:32])[1:-1] + ("…" if len(key) > 32 else "")


def _where(path: tuple[str | int, ...]) -> str:
    out = ""
    for step in path:
        # Keys are the client's: long ones are cut, odd characters escaped.
        out += f"[{step}]" if isinstance(step, int) else "." + _short(step)
    return out.lstrip(".")


# A lone surrogate in a decoded string can only come from a ``\\uD800``-``\\uDFFF`` escape
# (the bytes themselves were valid UTF-8), so bodies without one skip that walk.
_CONTAINERS = (dict, list)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check(data: Any, *, surrogates: bool) -> tuple[str, str | None] | None:
    """The first problem of a decoded value and where it is, walked without recursion;
    None if there is none. Only containers are pushed and a path is built per container,
    never per scalar: a body of millions of numbers costs one pass over them."""
    stack: list[tuple[dict[str, Any] | list[Any], int, tuple[str | int, ...]]] = [
        (data, 0, ())]
    while stack:
        value, depth, path = stack.pop()
        if depth >= MAX_DEPTH:
            return f"it nests deeper than {MAX_DEPTH} levels", None
        if not surrogates:  # the common case: only containers matter, found at C speed
            children = value.values() if isinstance(value, dict) else value
            stack.extend([(c, depth + 1, path) for c in children if type(c) in _CONTAINERS])
            continue
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if surrogates and isinstance(key, str) and not _utf8(key):
                return "a key holds a lone surrogate", _where(path) or None
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, (*path, key) if surrogates else path))
            elif surrogates and isinstance(child, str) and not _utf8(child):
                return "a string holds a lone surrogate", _where((*path, key)) or None
    return None


def load_object(body: bytes | str, *, what: str = "Request body",
                code: str | None = None) -> dict[str, Any]:
    """A client's JSON object, checked as the module docstring says.

    ``what`` names the input in messages ("Request body", "Frame"); ``code`` is the
    error's OpenAI code.

    Raises:
        InvalidRequestError: not strict JSON, not an object, too deep, or a lone surrogate.
    """
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        # json's C scanner guards its own recursion; the body is far too deep.
        raise InvalidRequestError(f"{what} is not acceptable: it nests deeper than "
                                  f"{MAX_DEPTH} levels", code=code) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError among them
        raise InvalidRequestError(f"{what} is not valid JSON: {_reason(exc)}",
                                  code=code) from None
    if not isinstance(data, dict):
        raise InvalidRequestError(f"{what} must be a JSON object", code=code)
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    surrogates = _SURROGATE_ESCAPE.search(text) is not None or (
        isinstance(body, str) and not _utf8(body))
    found = _check(data, surrogates=surrogates)
    if found is not None:
        problem, param = found
        at = f" (at '{param}')" if param else ""
        raise InvalidRequestError(f"{what} is not acceptable: {problem}{at}", param=param,
                                  code=code)
    return data


def _reason(exc: ValueError) -> str:
    # A JSONDecodeError says where, never what; a UnicodeDecodeError quotes bytes.
    if isinstance(exc, json.JSONDecodeError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"invalid UTF-8 at byte {exc.start}"
    return excerpt(str(exc), 200)[1:-1]
