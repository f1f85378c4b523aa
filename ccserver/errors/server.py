"""The server's failures (5xx): no CLI, a CLI that did not start or answer in time, a
shutdown that stopped the request, and what an unexpected exception becomes."""

from __future__ import annotations

from ccproto import CLIError, ProtocolError

__all__ = [
    "CLIStartFailed",
    "CLITimeout",
    "CLIUnavailable",
    "InternalError",
    "ShuttingDown",
    "StoreUnavailable",
]


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


class StoreUnavailable(CLIError):
    """The shared conversation store (Redis) did not answer within its timeout, or refused
    the connection: the request needs it and cannot go on without it.

    A CLIError, so a turn that loses the store mid-way ends as a `TurnFailed` in each
    surface's own words. Retryable: the gateway reconnects by itself when the store is back.
    """

    status_hint = 503
    error_type = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="store_unavailable", retryable=True, retry_after=1.0)


class InternalError(ProtocolError):
    """What an unexpected exception becomes on the wire: no detail, and not retryable
    (the same request would most likely fail the same way)."""

    status_hint = 500
    error_type = "server_error"

    def __init__(self, message: str = "The server failed while handling the request") -> None:
        super().__init__(message, code="internal_error")
