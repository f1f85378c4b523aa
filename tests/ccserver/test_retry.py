"""The retry policy: only failures before output that a new process can fix, with backoff."""

from __future__ import annotations

import errno

import pytest

from ccproto import CLIError, InvalidRequestError
from ccserver.core.retry import MAX_BACKOFF_SECONDS, RetryPolicy, is_transient
from ccserver.proc.spawn import ProcessStartError
from ccserver.settings.sections import ClaudeSettings


def start_error(code: int) -> ProcessStartError:
    try:
        raise ProcessStartError("claude: failed") from OSError(code, "x")
    except ProcessStartError as exc:
        return exc


def wrapped(cause: BaseException) -> CLIError:
    try:
        raise CLIError("could not be started", code="cli_unavailable") from cause
    except CLIError as exc:
        return exc


CRASH = CLIError("Claude Code was stopped by SIGKILL", code="cli_exited")


@pytest.mark.parametrize(("error", "transient"), [
    (start_error(errno.EAGAIN), True),
    (start_error(errno.ENOMEM), True),
    (start_error(errno.EMFILE), True),
    (start_error(errno.ETXTBSY), True),
    (start_error(errno.ENOENT), False),
    (start_error(errno.EACCES), False),
    (ProcessStartError("no cause"), False),
    (wrapped(start_error(errno.EAGAIN)), True),
    (wrapped(start_error(errno.ENOENT)), False),
    (OSError(errno.ENFILE, "x"), True),
    (CRASH, True),
    (CLIError("timeout", code="timeout", retryable=True), False),
    (CLIError("429", code="rate_limit_exceeded", retryable=True), False),
    (CLIError("overloaded", code="upstream_overloaded", retryable=True), False),
    (CLIError("not logged in", code="cli_not_logged_in"), False),
    (InvalidRequestError("bad", code="invalid_value"), False),
    (RuntimeError("bug"), False),
])
def test_which_failures_a_new_process_can_fix(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_retries_stop_at_the_limit() -> None:
    policy = RetryPolicy(max_retries=2)
    assert [policy.should_retry(CRASH, attempt, False) for attempt in (1, 2, 3)] == [True, True, False]
    assert not RetryPolicy(max_retries=0).should_retry(CRASH, 1, False)


def test_never_after_output() -> None:
    assert not RetryPolicy(max_retries=5).should_retry(CRASH, 1, produced_output=True)


def test_backoff_doubles_up_to_a_cap() -> None:
    policy = RetryPolicy(backoff_seconds=0.5)
    assert [policy.backoff(a) for a in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert policy.backoff(50) == MAX_BACKOFF_SECONDS
    assert RetryPolicy(backoff_seconds=0.0).backoff(3) == 0.0


def test_from_settings() -> None:
    policy = RetryPolicy.from_settings(ClaudeSettings(start_retries=4, retry_backoff_seconds=0.25))
    assert policy == RetryPolicy(max_retries=4, backoff_seconds=0.25)
    assert RetryPolicy.from_settings(ClaudeSettings()) == RetryPolicy(max_retries=2, backoff_seconds=0.5)
