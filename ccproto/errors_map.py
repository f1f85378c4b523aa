"""How a failed CLI turn becomes an OpenAI error: status, type, code and a useful message.

The table follows the protocol reference §2.6 and §4: every failure the CLI reports comes
as a ``result`` with ``is_error: true``; the HTTP status of the upstream API, when there
was one, is ``api_error_status``. A run that exits without any result failed too.
"""

from __future__ import annotations

import signal

from .cli_types import Exit, Result
from .errors import CLIError

__all__ = ["error_for_exit", "error_for_result"]

_LOGIN_HINT = (
    "log the server's Claude Code in (`claude auth login`) or set ANTHROPIC_API_KEY "
    "in the server's environment"
)


def _upstream(status: int, text: str) -> CLIError:
    if status in (401, 403):
        return CLIError(
            f"Claude Code could not authenticate with the Anthropic API ({text}); {_LOGIN_HINT}",
            status_hint=401,
            error_type="authentication_error",
            code="upstream_authentication_failed",
        )
    if status == 404:
        return CLIError(text, status_hint=404, error_type="invalid_request_error",
                        code="model_not_found", param="model")
    if status == 413:
        return CLIError(text, status_hint=413, error_type="invalid_request_error",
                        code="request_too_large")
    if status == 429:
        return CLIError(text, status_hint=429, error_type="rate_limit_error",
                        code="rate_limit_exceeded", retryable=True)
    if status in (503, 529):
        return CLIError(text, status_hint=503, error_type="server_error",
                        code="upstream_overloaded", retryable=True)
    if status >= 500:
        return CLIError(text, status_hint=502, error_type="server_error",
                        code="upstream_error", retryable=True)
    # Other 4xx: the request the CLI built from ours was refused (e.g. context too long).
    return CLIError(text, status_hint=400, error_type="invalid_request_error",
                    code="upstream_bad_request")


def error_for_result(result: Result) -> CLIError | None:
    """The error a result stands for, or None when the turn succeeded.

    A refusal (``stop_reason: refusal``) is reported by the CLI as an error, but OpenAI
    reports the same thing as a completion with ``finish_reason: content_filter``; it is
    not mapped to an error here.
    """
    if not result.is_error or result.stop_reason == "refusal":
        return None
    text = (result.result or "; ".join(result.errors) or "Claude Code reported an error").strip()
    if result.api_error_status is not None:
        return _upstream(result.api_error_status, text)
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
