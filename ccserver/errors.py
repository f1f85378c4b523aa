"""The one place where exceptions become OpenAI-shaped HTTP errors."""

from __future__ import annotations

import logging
import math

from ccproto import ProtocolError

__all__ = [
    "Busy", "CLIUnavailable", "ConversationBusy", "ConversationNotFound", "error_payload",
]

log = logging.getLogger("ccserver")


class Busy(ProtocolError):
    """Every CLI slot is taken and the wait queue is full or waited too long."""

    status_hint = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, code="server_busy", retryable=True, retry_after=retry_after)


class CLIUnavailable(ProtocolError):
    """No usable Claude Code CLI was found at start-up."""

    status_hint = 503
    error_type = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="cli_unavailable")


class ConversationNotFound(ProtocolError):
    status_hint = 404
    error_type = "invalid_request_error"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"No conversation found with id '{conversation_id}'",
                         code="conversation_not_found", param="conversation_id")


class ConversationBusy(ProtocolError):
    status_hint = 409
    error_type = "invalid_request_error"

    def __init__(self, conversation_id: str, waited: float) -> None:
        super().__init__(
            f"Conversation '{conversation_id}' is still answering an earlier request "
            f"(waited {waited:g} s); retry when it has finished",
            code="conversation_busy", param="conversation_id", retryable=True,
            retry_after=1.0,
        )


def error_payload(exc: BaseException) -> tuple[int, dict[str, object], list[tuple[str, str]]]:
    """(status, body, extra headers) for any exception a request handler let escape."""
    if not isinstance(exc, ProtocolError):
        log.exception("unexpected error while serving a request", exc_info=exc)
        exc = ProtocolError("The server failed while handling the request", code="internal_error")
    headers: list[tuple[str, str]] = []
    if exc.retry_after is not None:
        headers.append(("retry-after", str(max(1, math.ceil(exc.retry_after)))))
    # The openai SDKs retry 408/409/429/5xx by default, starting the CLI again each time;
    # say so when a retry cannot help (openai-wire.md §1.6).
    headers.append(("x-should-retry", "true" if exc.retryable else "false"))
    return exc.status_hint, exc.to_body(), headers
