"""When a failed CLI run is started again: the policy, as pure functions of the failure.

A run is retried only when all of these hold:

- nothing of it reached the client (``produced_output`` False): a retry after the first
  byte would show the client two different beginnings of one answer;
- the failure is one a new process can fix: the process could not be started for a
  passing reason (out of processes, memory or file descriptors, the executable being
  replaced), or it crashed or was killed before reporting any result;
- fewer than ``claude.start_retries`` retries were made.

Never retried: a missing or non-executable CLI (it stays missing), errors the CLI reported
in a result (the Anthropic API's 429/5xx are already retried inside the CLI, per
``claude.max_retries``), timeouts (a retry would multiply a wait the client already had),
and bad requests. Backoff doubles from ``claude.retry_backoff_seconds`` and is
deterministic; the caller sleeps (and may add jitter).
"""

from __future__ import annotations

import errno

import attrs

from ccproto import ProtocolError

from ..proc.spawn import ProcessStartError
from ..settings.sections import ClaudeSettings

__all__ = ["MAX_BACKOFF_SECONDS", "RETRYABLE_CODES", "RetryPolicy", "is_transient"]

MAX_BACKOFF_SECONDS = 10.0

#: ``error.code`` values of failures a new process can fix: the CLI died without a result.
RETRYABLE_CODES = frozenset({"cli_exited"})

# Start failures the system clears by itself: resource shortages and a binary being updated.
_TRANSIENT_ERRNOS = frozenset({
    errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.ETXTBSY, errno.EINTR,
})


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a failure that starting the CLI again could fix."""
    if isinstance(error, ProcessStartError):
        # runner raises it "from" the OSError; ENOENT/EACCES/ENOEXEC never go away.
        cause = error.__cause__
        return isinstance(cause, OSError) and cause.errno in _TRANSIENT_ERRNOS
    if isinstance(error, OSError):
        return error.errno in _TRANSIENT_ERRNOS
    if isinstance(error, ProtocolError):
        # A start failure wrapped for the client ("cli_unavailable") keeps its cause when
        # raised "from" it; judge the cause.
        if isinstance(error.__cause__, ProcessStartError):
            return is_transient(error.__cause__)
        return error.code in RETRYABLE_CODES
    return False


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """``claude.start_retries`` and ``claude.retry_backoff_seconds`` as a decision.

    Attempts count from 1: the first run is attempt 1, its retry attempt 2, and so on.
    """

    max_retries: int = 2
    backoff_seconds: float = 0.5

    @classmethod
    def from_settings(cls, settings: ClaudeSettings) -> RetryPolicy:
        return cls(max_retries=settings.start_retries,
                   backoff_seconds=settings.retry_backoff_seconds)

    def should_retry(self, failed_error: BaseException, attempt: int,
                     produced_output: bool) -> bool:
        """Whether attempt number ``attempt``, which failed with ``failed_error``, is re-run.

        ``produced_output`` is True as soon as anything of the run was sent to the client
        (or the HTTP status was committed); from then on the answer is never retried.
        """
        return (not produced_output and attempt <= self.max_retries
                and is_transient(failed_error))

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before re-running after failed attempt ``attempt`` (1, 2, ...)."""
        return min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2.0 ** max(0, attempt - 1))
