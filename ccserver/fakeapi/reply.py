"""What the fake sends back, as data: a `Reply` is a status, headers, timed body frames and an
`Ending` that says how the server finishes (or deliberately fails to finish) the exchange."""

from __future__ import annotations

import enum
import json

import attrs

__all__ = ["Ending", "Frame", "Reply", "error_reply", "json_reply"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
# Messages close to the real API's, so the CLI picks the same wording (401 -> "Invalid API key").
_ERROR_MESSAGES = {
    400: "Invalid request (fake)",
    401: "invalid x-api-key",
    403: "Permission denied (fake)",
    404: "Not found (fake)",
    429: "Rate limited (fake)",
    500: "Internal server error (fake)",
    529: "Overloaded (fake)",
}


class Ending(enum.Enum):
    #: Finish the HTTP message normally.
    COMPLETE = "complete"
    #: Close the connection without finishing the chunked body (no message_stop).
    DROP = "drop"
    #: Send the frames, then hold the connection open until the client leaves.
    HANG = "hang"
    #: Never send the response head; hold the connection until the client leaves.
    HANG_BEFORE_HEADERS = "hang_before_headers"


@attrs.frozen
class Frame:
    data: bytes
    #: Seconds to wait before sending this frame.
    delay: float = 0.0


@attrs.frozen(kw_only=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    frames: tuple[Frame, ...] = ()
    first_delay: float = 0.0
    ending: Ending = Ending.COMPLETE


def json_reply(status: int, obj: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    body = json.dumps(obj).encode()
    head = (("content-type", "application/json"), ("content-length", str(len(body))))
    return Reply(status=status, headers=head + headers, frames=(Frame(body),))


def error_reply(
    status: int,
    message: str | None = None,
    error_type: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    """An HTTP error in Anthropic's shape ``{"type":"error","error":{"type","message"}}``."""
    kind = error_type or _ERROR_TYPES.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    text = message or _ERROR_MESSAGES.get(status, f"HTTP {status} (fake)")
    return json_reply(status, {"type": "error", "error": {"type": kind, "message": text}}, headers)
