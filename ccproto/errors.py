"""Errors that ccproto raises, each carrying the OpenAI error it becomes on the wire.

Shaped like h11's ``ProtocolError``: an abstract base class with hints, a subclass for
"the client's request was bad" and one for "the CLI misbehaved or failed". The server
adds its own subclasses (``ccserver/errors.py``) and maps them all to an HTTP response
in exactly one place, using the hints.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLIError", "InvalidRequestError", "ProtocolError"]


class ProtocolError(Exception):
    """Abstract base class: an error with an HTTP status and an OpenAI error body.

    Instantiating it directly raises TypeError, as h11's does: which side failed, and so
    the status, is the subclass's to say, never a call site's (subclasses may still
    override ``status_hint`` and ``error_type`` per instance, as `CLIError` does for the
    CLI's many failures).

    Attributes:
        status_hint: the HTTP status the server should answer with.
        error_type: OpenAI's ``error.type`` (``invalid_request_error``, ``server_error`` ...).
        code: OpenAI's ``error.code``, or None.
        param: the request field at fault, or None.
        retryable: whether running the same request again could help; the server turns
            False into ``x-should-retry: false`` so SDKs don't start the CLI again for nothing.
        retry_after: seconds a client should wait before retrying, when known.
    """

    status_hint: int = 500
    error_type: str = "server_error"

    def __init__(
        self,
        message: str,
        *,
        status_hint: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        if type(self) is ProtocolError:
            raise TypeError("ProtocolError is abstract: raise a subclass of it")
        super().__init__(message)
        self.message = message
        if status_hint is not None:
            self.status_hint = status_hint
        if error_type is not None:
            self.error_type = error_type
        self.code = code
        self.param = param
        self.retryable = retryable
        self.retry_after = retry_after

    def to_body(self) -> dict[str, Any]:
        """The OpenAI error object: ``{"error": {message, type, param, code}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(ProtocolError):
    """The client's request cannot be served as sent (bad field, unsupported value)."""

    status_hint = 400
    error_type = "invalid_request_error"


class CLIError(ProtocolError):
    """The CLI failed, or its output broke the protocol; status depends on the cause."""

    status_hint = 502
    error_type = "server_error"
