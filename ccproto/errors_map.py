"""How a failed CLI turn becomes an OpenAI error: status, type, code and a useful message.

The table follows the protocol reference §2.6 and §4: every failure the CLI reports comes
as a ``result`` with ``is_error: true``; the HTTP status of the upstream API, when there
was one, is ``api_error_status``. A run that exits without any result failed too.

The client gets the upstream's status class: 401 stays 401, 403 stays 403 (a key that
works but may not use this model or organisation is not a login problem), 404, 413 and
429 pass through, other 4xx become 400, 529 and 503 become 503, other 5xx 502.

``Retry-After`` on 429 and 503. The CLI never reports the upstream's ``retry-after``
header in its result, its synthetic assistant message or on stderr (measured on 2.1.197
with 400/401/403/404/413/429/500/503/529, also with ``ANTHROPIC_LOG=debug`` and
``--debug``). It shows only as the delay of its own retries: a ``system/api_retry`` line
carries ``retry_delay_ms``, which is the upstream's ``retry-after`` when it sent one
(429 with ``retry-after: 2`` gives ``retry_delay_ms: 2000``) and the CLI's backoff
otherwise. So the last such line for the same status is the best wait there is; with
``CLAUDE_CODE_MAX_RETRIES=0`` there is none, and `DEFAULT_RETRY_AFTER` stands in.
"""

from __future__ import annotations

import signal

from .cli_types import Exit, Result, SystemEvent
from .errors import CLIError

__all__ = ["DEFAULT_RETRY_AFTER", "error_for_exit", "error_for_result", "retry_delay"]

#: Seconds a client is told to wait after an upstream 429 or 503/529 when the CLI did not
#: retry and so never said what the upstream asked for: about the CLI's own third backoff
#: step (0.5, 1.1, 2.4 s), long enough that the client does not hammer a limit the CLI
#: already hit, short enough that the openai SDKs still honour it (they ignore > 60 s).
DEFAULT_RETRY_AFTER = 2.0

_LOGIN_HINT = (
    "log the server's Claude Code in (`claude auth login`) or set ANTHROPIC_API_KEY "
    "in the server's environment"
)


def retry_delay(record: SystemEvent) -> tuple[int, float] | None:
    """(upstream status, seconds) of a ``system/api_retry`` line, or None for other lines."""
    status, delay_ms = record.raw.get("error_status"), record.raw.get("retry_delay_ms")
    if record.subtype != "api_retry" or not isinstance(status, int):
        return None
    if not isinstance(delay_ms, int | float) or isinstance(delay_ms, bool) or delay_ms < 0:
        return None
    return status, delay_ms / 1000


def _upstream(status: int, text: str, retry_after: float) -> CLIError:
    if status == 401:
        return CLIError(
            f"Claude Code could not authenticate with the Anthropic API ({text}); {_LOGIN_HINT}",
            status_hint=401,
            error_type="authentication_error",
            code="upstream_authentication_failed",
        )
    if status == 403:
        return CLIError(
            f"The Anthropic API denied Claude Code permission ({text}): the server's "
            "credentials may not use this model or resource",
            status_hint=403,
            error_type="permission_error",
            code="upstream_permission_denied",
        )
    if status == 404:
        return CLIError(text, status_hint=404, error_type="invalid_request_error",
                        code="model_not_found", param="model")
    if status == 413:
        return CLIError(text, status_hint=413, error_type="invalid_request_error",
                        code="request_too_large")
    if status == 429:
        return CLIError(text, status_hint=429, error_type="rate_limit_error",
                        code="rate_limit_exceeded", retryable=True,
                        retry_after=retry_after)
    if status in (503, 529):
        return CLIError(text, status_hint=503, error_type="server_error",
                        code="upstream_overloaded", retryable=True, retry_after=retry_after)
    if status >= 500:
        return CLIError(text, status_hint=502, error_type="server_error",
                        code="upstream_error", retryable=True)
    # Other 4xx: the request the CLI built from ours was refused (e.g. context too long).
    return CLIError(text, status_hint=400, error_type="invalid_request_error",
                    code="upstream_bad_request")


def error_for_result(
    result: Result, last_retry: tuple[int, float] | None = None
) -> CLIError | None:
    """The error a result stands for, or None when the turn succeeded.

    ``last_retry`` is `retry_delay` of the turn's last ``api_retry`` line, if any: when
    its status is the result's, its delay becomes the error's ``retry_after``.

    A refusal (``stop_reason: refusal``) is reported by the CLI as an error, but OpenAI
    reports the same thing as a completion with ``finish_reason: content_filter``; it is
    not mapped to an error here.
    """
    if not result.is_error or result.stop_reason == "refusal":
        return None
    text = (result.result or "; ".join(result.errors) or "Claude Code reported an error").strip()
    if result.api_error_status is not None:
        status = result.api_error_status
        wait = last_retry[1] if last_retry and last_retry[0] == status else DEFAULT_RETRY_AFTER
        return _upstream(status, text, wait)
    if result.subtype == "error_max_turns":
        return CLIError(
            f"Claude Code stopped at its turn limit before finishing ({text})",
            status_hint=422, error_type="invalid_request_error", code="max_turns_exceeded",
        )
    if result.subtype == "error_max_budget_usd":
        return CLIError(
            f"Claude Code stopped at its cost budget before finishing ({text})",
            status_hint=422, error_type="invalid_request_error", code="max_budget_exceeded",
        )
    if result.subtype == "error_max_structured_output_retries":
        # --json-schema: every StructuredOutput call broke the schema (client-tools
        # reference §9). The model failed, not the request: the same code as a turn that
        # ends without the object (`Turn`).
        return CLIError(
            f"The model did not produce a JSON object matching the requested schema ({text})",
            status_hint=502, error_type="server_error", code="structured_output_failed",
        )
    if text.startswith("Not logged in"):
        return CLIError(f"{text}: {_LOGIN_HINT}", status_hint=401,
                        error_type="authentication_error", code="cli_not_logged_in")
    if "timed out" in text.lower():
        return CLIError(f"The Anthropic API did not answer in time ({text})", status_hint=504,
                        error_type="server_error", code="upstream_timeout", retryable=True)
    return CLIError(f"Claude Code failed: {text}", status_hint=502, error_type="server_error",
                    code="cli_error")


def error_for_exit(exit_: Exit) -> CLIError:
    """The error for a process that ended without reporting a result."""
    code = exit_.returncode
    tail = exit_.stderr_tail.strip().splitlines()
    detail = f": {tail[-1][:500]}" if tail else ""
    if code < 0 or code > 128:
        signum = -code if code < 0 else code - 128
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        how = f"was stopped by {name}"
    elif code == 0:
        how = "exited without a result"
    else:
        how = f"exited with code {code}"
    return CLIError(f"Claude Code {how}{detail}", status_hint=502, error_type="server_error",
                    code="cli_exited")
