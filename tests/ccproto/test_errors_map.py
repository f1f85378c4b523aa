"""The upstream status a failed CLI turn reports, mapped to what the client sees (pure)."""

from __future__ import annotations

import pytest

from ccproto import Result, parse_record
from ccproto.errors_map import DEFAULT_RETRY_AFTER, error_for_result, retry_delay
from tests.support import records as r

pytestmark = [pytest.mark.reliability]


def failed(status: int) -> Result:
    record = parse_record(r.result(is_error=True, status=status, text=f"API Error: {status} (fake)",
                                   stop_reason="stop_sequence"))
    assert isinstance(record, Result)
    return record


# upstream status -> (client status, error.type, error.code, retry_after with no api_retry)
@pytest.mark.parametrize(("upstream", "expected"), [
    (400, (400, "invalid_request_error", "upstream_bad_request", None)),
    (401, (401, "authentication_error", "upstream_authentication_failed", None)),
    (403, (403, "permission_error", "upstream_permission_denied", None)),
    (404, (404, "invalid_request_error", "model_not_found", None)),
    (413, (413, "invalid_request_error", "request_too_large", None)),
    (429, (429, "rate_limit_error", "rate_limit_exceeded", DEFAULT_RETRY_AFTER)),
    (500, (502, "server_error", "upstream_error", None)),
    (503, (503, "server_error", "upstream_overloaded", DEFAULT_RETRY_AFTER)),
    (529, (503, "server_error", "upstream_overloaded", DEFAULT_RETRY_AFTER)),
])
def test_the_client_gets_the_upstream_status_class(
        upstream: int, expected: tuple[int, str, str, float | None]) -> None:
    error = error_for_result(failed(upstream))
    assert error is not None
    assert (error.status_hint, error.error_type, error.code, error.retry_after) == expected


def test_the_cli_retry_delay_for_the_same_status_is_the_retry_after() -> None:
    # 429 with `retry-after: 7` gives an api_retry line with retry_delay_ms 7000 (measured).
    line = parse_record(r.api_retry(429) | {"retry_delay_ms": 7000})
    last = retry_delay(line)  # type: ignore[arg-type]
    assert last == (429, 7.0)
    error = error_for_result(failed(429), last)
    assert error is not None and error.retry_after == 7.0
    # A delay the CLI took for another status says nothing about this one.
    other = error_for_result(failed(429), (529, 30.0))
    assert other is not None and other.retry_after == DEFAULT_RETRY_AFTER


@pytest.mark.parametrize("raw", [
    {"retry_delay_ms": None}, {"retry_delay_ms": True}, {"retry_delay_ms": -5},
    {"error_status": None}, {"subtype": "status"},
])
def test_a_retry_line_without_a_usable_delay_is_ignored(raw: dict[str, object]) -> None:
    line = parse_record(r.api_retry(429) | raw)
    assert retry_delay(line) is None  # type: ignore[arg-type]


def test_running_out_of_structured_output_retries_is_the_models_failure() -> None:
    # client-tools reference §9: is_error, errors, no result text, no upstream status.
    record = parse_record({"type": "result", "subtype": "error_max_structured_output_retries",
                           "is_error": True, "stop_reason": "tool_use", "session_id": "s",
                           "errors": ["Failed to provide valid structured output after 5 attempts"],
                           "usage": {}})
    assert isinstance(record, Result)
    error = error_for_result(record)
    assert error is not None
    assert (error.status_hint, error.error_type, error.code) == (
        502, "server_error", "structured_output_failed")
    assert "requested schema" in error.message and "after 5 attempts" in error.message
