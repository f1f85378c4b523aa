"""The client's errors (4xx): what the server refuses, what a request names that does not
exist, and what conflicts with work in progress. Each class fixes its status, type and
code; a call site gives the message's subject only."""

from __future__ import annotations

from ccproto import ProtocolError, excerpt

__all__ = [
    "Busy",
    "ConversationBusy",
    "ConversationNotFound",
    "DuplicateRequestId",
    "MethodNotAllowed",
    "ModelNotFound",
    "OriginRefused",
    "PayloadTooLarge",
    "PreviousResponseNotFound",
    "RequestTimeout",
    "ResponseInProgress",
    "ResponseNotFound",
    "TooManyRequests",
    "Unauthorized",
    "UnknownRequestId",
    "UnknownURL",
]


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
