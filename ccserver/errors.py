"""The one place where exceptions become OpenAI-shaped HTTP errors.

Theory of operation. ``ccproto.ProtocolError`` is abstract, as in h11: an error says what
went wrong by its class, and the class fixes the HTTP status and the OpenAI ``error.type``
and ``error.code`` it becomes on the wire. ccproto raises its own subclasses
(`InvalidRequestError`, `CLIError`); everything the server itself refuses or fails at is a
subclass here, so a status is chosen once, beside its siblings, and never hand-picked at
a call site. A call site chooses only the message and, for some, the subject (an id, a
path, a limit) the message names. What the client sent is quoted through ccproto's
`excerpt`: a short, escaped prefix, so an error body never grows with the input.

`error_payload` is the boundary (httpcore's ``map_exceptions`` idea): it turns whatever a
handler let escape into (status, body, headers). Anything that is not a ProtocolError is
a bug or an unplanned failure; it becomes `InternalError` and its traceback goes to the
log, never to the client.

Exception groups get one policy too; it is written down once, above `unwrap_single`.
"""

from __future__ import annotations

import logging
import math
from typing import TypeVar

from ccproto import CLIError, ProtocolError, excerpt

__all__ = [
    "Busy", "CLIStartFailed", "CLITimeout", "CLIUnavailable", "ConversationBusy",
    "ConversationNotFound", "DuplicateRequestId", "InternalError", "MethodNotAllowed",
    "ModelNotFound", "OriginRefused", "PayloadTooLarge", "PreviousResponseNotFound",
    "RequestTimeout", "ResponseInProgress", "ResponseNotFound", "ShuttingDown",
    "TooManyRequests", "Unauthorized", "UnknownRequestId", "UnknownURL", "error_payload",
    "find_leaf", "raise_single", "unwrap_single",
]

log = logging.getLogger("ccserver")

E = TypeVar("E", bound=BaseException)


# -- The request could not be routed or was refused at the door -------------------------


class UnknownURL(ProtocolError):
    """No route (HTTP) or WebSocket surface answers at this path."""

    status_hint = 404
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unknown_url")


class MethodNotAllowed(ProtocolError):
    """The path exists, but not for this method; the caller adds ``Allow``."""

    status_hint = 405
    error_type = "invalid_request_error"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Method {excerpt(method)} is not allowed on {excerpt(path)}",
                         code="method_not_allowed")


class OriginRefused(ProtocolError):
    """A browser page's Origin may not use this server (edge/auth.py `browser_problem`)."""

    status_hint = 403
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="origin_not_allowed")


class Unauthorized(ProtocolError):
    """Keys are configured and the request carries none of them; OpenAI's type and code."""

    status_hint = 401
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_api_key")


class PayloadTooLarge(ProtocolError):
    """The request body outgrew ``server.max_body_bytes``; reading stopped there."""

    status_hint = 413
    error_type = "invalid_request_error"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than the server's limit of {limit} bytes",
                         code="request_too_large")


class RequestTimeout(ProtocolError):
    """The request body did not arrive whole within ``server.body_timeout_seconds``.

    Retryable: nothing ran, and the next attempt may have a faster network. The answer
    also closes the connection (`error_payload`): the rest of the body may still be on
    its way, so the connection cannot carry another request.
    """

    status_hint = 408
    error_type = "invalid_request_error"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The request body did not arrive within {seconds:g} s",
                         code="request_timeout", retryable=True)


# -- A resource the request names does not exist -----------------------------------------


class ModelNotFound(ProtocolError):
    """``GET /v1/models/{id}`` for a model the server does not list."""

    status_hint = 404
    error_type = "invalid_request_error"

    def __init__(self, model_id: str) -> None:
        super().__init__(f"The model {excerpt(model_id)} does not exist", code="model_not_found",
                         param="model")


class ResponseNotFound(ProtocolError):
    """``GET /v1/responses/{id}`` for a response that was never stored or has expired."""

    status_hint = 404
    error_type = "invalid_request_error"

    def __init__(self, response_id: str) -> None:
        super().__init__(f"No response found with id {excerpt(response_id)}",
                         code="response_not_found")


class PreviousResponseNotFound(ProtocolError):
    """``previous_response_id`` names no stored response, or one whose conversation is gone.

    OpenAI answers both with the same code; the message tells them apart.
    """

    status_hint = 404
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="previous_response_not_found",
                         param="previous_response_id")


class ConversationNotFound(ProtocolError):
    status_hint = 404
    error_type = "invalid_request_error"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"No conversation found with id {excerpt(conversation_id)}",
                         code="conversation_not_found", param="conversation_id")


class UnknownRequestId(ProtocolError):
    """A WebSocket ``cancel`` for an id that is not running (finished, or never sent)."""

    status_hint = 404
    error_type = "invalid_request_error"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"No request with id {excerpt(request_id)} is running",
                         code="unknown_id", param="id")


# -- The request conflicts with work in progress ------------------------------------------


class ConversationBusy(ProtocolError):
    status_hint = 409
    error_type = "invalid_request_error"

    def __init__(self, conversation_id: str, waited: float) -> None:
        super().__init__(
            f"Conversation {excerpt(conversation_id)} is still answering an earlier request "
            f"(waited {waited:g} s); retry when it has finished",
            code="conversation_busy", param="conversation_id", retryable=True,
            retry_after=1.0,
        )


class DuplicateRequestId(ProtocolError):
    """A WebSocket create reuses the id of a request still running on that socket."""

    status_hint = 409
    error_type = "invalid_request_error"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"A request with id {excerpt(request_id)} is already running",
                         code="duplicate_id", param="id")


class ResponseInProgress(ProtocolError):
    """The Responses WebSocket mode runs one response per connection at a time."""

    status_hint = 409
    error_type = "invalid_request_error"

    def __init__(self) -> None:
        super().__init__("A response is already in progress on this connection; wait for it "
                         "to finish or send response.cancel", code="response_in_progress")


class TooManyRequests(ProtocolError):
    """One WebSocket already runs ``websocket.max_concurrent_per_socket`` requests.

    Not retryable by header: a frame has no headers, and the client knows when one of
    its own requests finishes.
    """

    status_hint = 429
    error_type = "rate_limit_error"

    def __init__(self, limit: int) -> None:
        super().__init__(f"This socket already runs {limit} requests; wait for one to finish",
                         code="too_many_requests")


class Busy(ProtocolError):
    """Every CLI slot is taken and the wait queue is full or waited too long."""

    status_hint = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, code="server_busy", retryable=True, retry_after=retry_after)


# -- The CLI could not answer -------------------------------------------------------------


class CLIUnavailable(ProtocolError):
    """No usable Claude Code CLI was found at start-up."""

    status_hint = 503
    error_type = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="cli_unavailable")


class CLIStartFailed(CLIError):
    """The CLI was found but this run's process could not be started.

    A CLIError, because it ends a turn (``TurnFailed``); its ``__cause__`` is the
    ``ProcessStartError``, which the retry policy (core/retry.py) judges.
    """

    status_hint = 503
    error_type = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="cli_unavailable")


class CLITimeout(CLIError):
    """The CLI was silent past one of the ``claude`` timeouts; the run was stopped.

    Retryable for the client, but never re-run by the server (core/retry.py): a retry
    would multiply a wait the client has already had.
    """

    status_hint = 504
    error_type = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="timeout", retryable=True)


class ShuttingDown(CLIError):
    """The server's shutdown grace ran out while this turn was still running; it was stopped.

    A CLIError, because it ends a turn (``TurnFailed``) like any failure, so each surface
    says it in its own words: a 503 before a stream is committed, an error event after.
    Retryable: another instance, or this one restarted, can serve the same request.
    """

    status_hint = 503
    error_type = "server_error"

    def __init__(self, message: str = "The server is shutting down; the request was "
                                      "stopped before it finished") -> None:
        super().__init__(message, code="server_shutting_down", retryable=True)


class InternalError(ProtocolError):
    """What an unexpected exception becomes on the wire: no detail, and not retryable
    (the same request would most likely fail the same way)."""

    status_hint = 500
    error_type = "server_error"

    def __init__(self, message: str = "The server failed while handling the request") -> None:
        super().__init__(message, code="internal_error")


def error_payload(exc: BaseException) -> tuple[int, dict[str, object], list[tuple[str, str]]]:
    """(status, body, extra headers) for any exception a request handler let escape."""
    if not isinstance(exc, ProtocolError):
        log.exception("unexpected error while serving a request", exc_info=exc)
        exc = InternalError()
    headers: list[tuple[str, str]] = []
    if exc.retry_after is not None:
        headers.append(("retry-after", str(max(1, math.ceil(exc.retry_after)))))
    # The openai SDKs retry 408/409/429/5xx by default, starting the CLI again each time;
    # say so when a retry cannot help (openai-wire.md §1.6).
    headers.append(("x-should-retry", "true" if exc.retryable else "false"))
    if isinstance(exc, RequestTimeout):
        # RFC 9110 §15.5.9: the server closes after a 408, and says so. Hypercorn would
        # close anyway (the request never ended), but a client told keeps it out of its pool.
        headers.append(("connection", "close"))
    return exc.status_hint, exc.to_body(), headers


# -- Exception groups: the one policy -----------------------------------------------------
#
# Trio's nurseries are strict: whatever escapes one arrives in an exception group, one
# level per nursery it crossed, even a single error. A handler two nurseries deep that
# raises ConversationNotFound reaches the boundary as a group of a group of one. The
# server's rule, everywhere:
#
#     A group of one error is that error. A group of several stays a group.
#
# Several errors are never narrowed to one of them, which would hide the others: they go
# on as the group, and at a response boundary become a 500 whose log shows every one.
# Three functions apply the rule, one for each kind of site:
#
# - `unwrap_single`, where an error becomes an answer (app.py's HTTP boundary, the
#   WebSocket error frame): every group of one is stripped, at any depth, and the lone
#   error is mapped. The site judges what it found: a lone Cancelled or KeyboardInterrupt
#   is not an error to answer.
# - `raise_single`, where a context manager re-raises through its own nursery
#   (proc/spawn.py): only the level that nursery added is stripped, and the very object
#   is raised with its own ``__context__``. asynccontextmanager recognises the exception
#   it threw into the generator by identity, and a caller's ``except`` must match it;
#   a group one level down is the block's own and passes unchanged.
# - `find_leaf`, at the process's edge (__main__): the outcome there is a message and an
#   exit status, not a re-raise, so it may read the leaves of a group of several for a
#   known error (the OSError of a failed bind).


def unwrap_single(exc: BaseException) -> BaseException:
    """The lone exception inside ``exc``: groups of one stripped at any depth.

    A plain exception comes back as it is, and so does ``exc`` itself when it holds
    several exceptions at any level (never an inner group of it: the outer one is what
    was raised, and a log of it shows everything).
    """
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
        inner = inner.exceptions[0]
    return exc if isinstance(inner, BaseExceptionGroup) else inner


def raise_single(group: BaseExceptionGroup[BaseException]) -> None:
    """Raise the one exception ``group`` holds, if it holds one; else return.

    Call it from the ``except`` clause that caught ``group``, then ``raise``: a group of
    several goes on unchanged. The member is raised as the same object, one level only,
    and its ``__context__`` is put back, since raising it inside the handler would
    otherwise make the group it came from its context.
    """
    if len(group.exceptions) != 1:
        return
    exc = group.exceptions[0]
    context = exc.__context__
    # This frame stays in exc's traceback: it must not keep the discarded group alive.
    del group
    try:
        raise exc
    finally:
        exc.__context__ = context


def find_leaf(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of type ``kind`` in ``exc``, or in its groups' leaves depth
    first; None when there is none. ``exc`` itself may be one."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := find_leaf(inner, kind)) is not None:
                return found
    return None
