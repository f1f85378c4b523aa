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

The tree is in `client` (4xx) and `server` (5xx); exception groups get one policy too,
written down once in `groups`.
"""

from __future__ import annotations

import logging
import math

from ccproto import ProtocolError

from .client import (
    Busy,
    ConversationBusy,
    ConversationNotFound,
    DuplicateRequestId,
    MethodNotAllowed,
    ModelNotFound,
    OriginRefused,
    PayloadTooLarge,
    PreviousResponseNotFound,
    RequestTimeout,
    ResponseInProgress,
    ResponseNotFound,
    TooManyRequests,
    Unauthorized,
    UnknownRequestId,
    UnknownURL,
)
from .groups import find_leaf, raise_single, unwrap_single
from .server import (
    CLIStartFailed,
    CLITimeout,
    CLIUnavailable,
    InternalError,
    ShuttingDown,
    StoreUnavailable,
)

__all__ = [
    "Busy",
    "CLIStartFailed",
    "CLITimeout",
    "CLIUnavailable",
    "ConversationBusy",
    "ConversationNotFound",
    "DuplicateRequestId",
    "InternalError",
    "MethodNotAllowed",
    "ModelNotFound",
    "OriginRefused",
    "PayloadTooLarge",
    "PreviousResponseNotFound",
    "RequestTimeout",
    "ResponseInProgress",
    "ResponseNotFound",
    "ShuttingDown",
    "StoreUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnknownRequestId",
    "UnknownURL",
    "error_payload",
    "find_leaf",
    "raise_single",
    "unwrap_single",
]

log = logging.getLogger("ccserver")


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
