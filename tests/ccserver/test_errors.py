"""The error tree and the exception-group policy (ccserver/errors/).

Each server error's status, type, code, param and retry hints are pinned here with the
values the call sites used to pick by hand, so the wire output cannot drift; then the
group policy, on its own and through each of the four sites that apply it.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

import ccserver.__main__ as cli_main
import ccserver.app as app_module
from ccproto import CLIError, InvalidRequestError, ProtocolError
from ccserver import errors
from ccserver.app import App
from ccserver.errors import (
    Busy,
    CLIStartFailed,
    CLITimeout,
    CLIUnavailable,
    ConversationBusy,
    ConversationNotFound,
    DuplicateRequestId,
    InternalError,
    MethodNotAllowed,
    ModelNotFound,
    OriginRefused,
    PayloadTooLarge,
    PreviousResponseNotFound,
    RequestTimeout,
    ResponseInProgress,
    ResponseNotFound,
    ShuttingDown,
    StoreUnavailable,
    TooManyRequests,
    Unauthorized,
    UnknownRequestId,
    UnknownURL,
    error_payload,
    find_leaf,
    raise_single,
    unwrap_single,
)
from ccserver.settings import Settings
from ccserver.ws.socket import error_frame_payload
from tests.support.asgi_client import request

INVALID = "invalid_request_error"

# error -> (status, type, code, param, x-should-retry, retry-after)
PROMISES: list[tuple[ProtocolError, tuple[int, str, str, str | None, str, str | None]]] = [
    (UnknownURL("Unknown path: /nope"), (404, INVALID, "unknown_url", None, "false", None)),
    (MethodNotAllowed("PUT", "/v1/models"),
     (405, INVALID, "method_not_allowed", None, "false", None)),
    (OriginRefused("no"), (403, INVALID, "origin_not_allowed", None, "false", None)),
    (Unauthorized("no key"), (401, INVALID, "invalid_api_key", None, "false", None)),
    (PayloadTooLarge(10), (413, INVALID, "request_too_large", None, "false", None)),
    (RequestTimeout(30), (408, INVALID, "request_timeout", None, "true", None)),
    (ModelNotFound("gpt-9"), (404, INVALID, "model_not_found", "model", "false", None)),
    (ResponseNotFound("resp_1"), (404, INVALID, "response_not_found", None, "false", None)),
    (PreviousResponseNotFound("gone"),
     (404, INVALID, "previous_response_not_found", "previous_response_id", "false", None)),
    (ConversationNotFound("conv_1"),
     (404, INVALID, "conversation_not_found", "conversation_id", "false", None)),
    (UnknownRequestId("r1"), (404, INVALID, "unknown_id", "id", "false", None)),
    (ConversationBusy("conv_1", 2.5),
     (409, INVALID, "conversation_busy", "conversation_id", "true", "1")),
    (DuplicateRequestId("r1"), (409, INVALID, "duplicate_id", "id", "false", None)),
    (ResponseInProgress(), (409, INVALID, "response_in_progress", None, "false", None)),
    (TooManyRequests(4), (429, "rate_limit_error", "too_many_requests", None, "false", None)),
    (Busy("full", retry_after=2.2), (429, "rate_limit_error", "server_busy", None, "true", "3")),
    (CLIUnavailable("no CLI"), (503, "server_error", "cli_unavailable", None, "false", None)),
    (CLIStartFailed("no fork"), (503, "server_error", "cli_unavailable", None, "false", None)),
    (CLITimeout("Claude Code went quiet (5 s)"),
     (504, "server_error", "timeout", None, "true", None)),
    (ShuttingDown(), (503, "server_error", "server_shutting_down", None, "true", None)),
    (StoreUnavailable("Redis went away"),
     (503, "server_error", "store_unavailable", None, "true", "1")),
    (InternalError(), (500, "server_error", "internal_error", None, "false", None)),
]


@pytest.mark.parametrize(("error", "promise"), PROMISES, ids=lambda p: type(p).__name__ if isinstance(p, ProtocolError) else None)
def test_each_error_answers_as_it_promises(
    error: ProtocolError, promise: tuple[int, str, str, str | None, str, str | None]
) -> None:
    status, body, headers = error_payload(error)
    assert (status, body["error"]["type"], body["error"]["code"],  # type: ignore[index]
            body["error"]["param"], dict(headers)["x-should-retry"],  # type: ignore[index]
            dict(headers).get("retry-after")) == promise
    assert body == {"error": {"message": error.message, "type": promise[1],
                              "param": promise[3], "code": promise[2]}}
    closes = ["connection"] if promise[0] == 408 else []  # the rest of the body may be coming
    assert [name for name, _ in headers] == (
        ["retry-after", "x-should-retry"] if promise[5] else ["x-should-retry"]) + closes
    assert dict(headers).get("connection") == ("close" if closes else None)


def test_every_server_error_is_pinned() -> None:
    # A new error joins PROMISES, or this fails: nothing goes on the wire unchecked.
    declared = {cls for _, cls in inspect.getmembers(errors, inspect.isclass)
                if issubclass(cls, ProtocolError) and cls.__module__.startswith(errors.__name__ + ".")}
    assert declared == {type(error) for error, _ in PROMISES}
    assert set(errors.__all__) >= {cls.__name__ for cls in declared}


def test_messages_name_their_subject() -> None:
    # The wording the call sites used to build by hand.
    assert MethodNotAllowed("PUT", "/v1/models").message == (
        "Method 'PUT' is not allowed on '/v1/models'")
    assert PayloadTooLarge(10).message == (
        "Request body is larger than the server's limit of 10 bytes")
    assert ModelNotFound("gpt-9").message == "The model 'gpt-9' does not exist"
    assert ResponseNotFound("resp_1").message == "No response found with id 'resp_1'"
    assert UnknownRequestId("r1").message == "No request with id 'r1' is running"
    assert DuplicateRequestId("r1").message == "A request with id 'r1' is already running"
    assert TooManyRequests(4).message == (
        "This socket already runs 4 requests; wait for one to finish")
    assert ResponseInProgress().message == (
        "A response is already in progress on this connection; wait for it to finish or "
        "send response.cancel")
    assert InternalError().message == "The server failed while handling the request"
    assert RequestTimeout(2.5).message == "The request body did not arrive within 2.5 s"


@pytest.mark.parametrize("make", [
    ModelNotFound, ResponseNotFound, UnknownRequestId, DuplicateRequestId, ConversationNotFound,
    lambda s: ConversationBusy(s, 1.0), lambda s: MethodNotAllowed(s, s),
])
def test_messages_quote_a_short_escaped_prefix_of_client_input(make: Any) -> None:
    # A 1 MB id must not come back in a 1 MB error body; odd characters come back escaped.
    error = make("\ud800\n" + "x" * 1_000_000)
    assert len(error.message) < 250
    assert "'\\ud800\\nxxx" in error.message and "…" in error.message
    assert error.message.encode("utf-8")


def test_cli_failures_are_cli_errors() -> None:
    # core/run.py catches CLIError to end a turn; these two must be caught there.
    assert issubclass(CLIStartFailed, CLIError) and issubclass(CLITimeout, CLIError)


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        ProtocolError("anything")
    assert InvalidRequestError("bad", param="model").status_hint == 400
    assert CLIError("boom").status_hint == 502
    # CLIError keeps its per-instance hints: ccproto maps many CLI failures through it.
    overridden = CLIError("slow", status_hint=504, error_type="server_error")
    assert (overridden.status_hint, overridden.error_type) == (504, "server_error")


def test_an_unexpected_exception_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="ccserver"):
        status, body, headers = error_payload(ValueError("secret detail"))
    assert status == 500
    assert body == {"error": {"message": "The server failed while handling the request",
                              "type": "server_error", "param": None, "code": "internal_error"}}
    assert headers == [("x-should-retry", "false")]
    assert "secret detail" not in str(body)
    assert "unexpected error" in caplog.text and "secret detail" in caplog.text


# -- The group policy ---------------------------------------------------------------------

a, b = ValueError("a"), KeyError("b")


@pytest.mark.parametrize(("exc", "expected"), [
    (a, a),
    (ExceptionGroup("one", [a]), a),
    (ExceptionGroup("outer", [ExceptionGroup("inner", [a])]), a),
    (BaseExceptionGroup("one", [KeyboardInterrupt()]), KeyboardInterrupt),
])
def test_unwrap_single_strips_groups_of_one(exc: BaseException, expected: object) -> None:
    found = unwrap_single(exc)
    assert found is expected or type(found) is expected


@pytest.mark.parametrize("make", [
    lambda: ExceptionGroup("two", [a, b]),
    lambda: ExceptionGroup("outer", [ExceptionGroup("two", [a, b])]),
    lambda: ExceptionGroup("outer", [ExceptionGroup("one", [a]), b]),
])
def test_unwrap_single_leaves_several_as_raised(make: Callable[[], BaseException]) -> None:
    group = make()
    assert unwrap_single(group) is group


def test_raise_single_raises_the_same_object_with_its_own_context() -> None:
    own, earlier = ValueError("own"), RuntimeError("earlier")
    own.__context__ = earlier
    with pytest.raises(ValueError) as info:
        try:
            raise ExceptionGroup("one", [own])
        except ExceptionGroup as caught:
            raise_single(caught)
            raise
    assert info.value is own
    assert info.value.__context__ is earlier  # not the group it came out of


def test_raise_single_strips_one_level_only() -> None:
    inner = ExceptionGroup("the block's own", [ValueError("own")])
    with pytest.raises(ExceptionGroup) as info:
        try:
            raise ExceptionGroup("the nursery's", [inner])
        except ExceptionGroup as caught:
            raise_single(caught)
            raise
    assert info.value is inner


def test_raise_single_returns_for_several() -> None:
    raise_single(ExceptionGroup("two", [a, b]))  # returns: the caller re-raises the group


def test_find_leaf_looks_through_every_leaf() -> None:
    bind = OSError(98, "Address already in use")
    assert find_leaf(bind, OSError) is bind
    assert find_leaf(ExceptionGroup("g", [a, ExceptionGroup("h", [b, bind])]), OSError) is bind
    assert find_leaf(ExceptionGroup("g", [a, b]), OSError) is None
    assert find_leaf(a, OSError) is None


# -- The sites that apply it --------------------------------------------------------------


def _raising(exc: BaseException) -> Callable[..., Any]:
    async def handler(*args: object) -> int:
        raise exc
    return handler


@pytest.mark.parametrize(("exc", "status", "code"), [
    (ExceptionGroup("o", [ExceptionGroup("i", [ModelNotFound("m")])]), 404, "model_not_found"),
    (ExceptionGroup("two", [ModelNotFound("m"), ValueError()]), 500, "internal_error"),
    (ValueError("plain"), 500, "internal_error"),
])
async def test_the_http_boundary_answers_the_lone_error(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, status: int, code: str
) -> None:
    monkeypatch.setitem(app_module.ROUTES["/models"], "GET", _raising(exc))
    with trio.fail_after(10):
        response = await request(App(Settings()), "GET", "/v1/models")
    assert (response.status, response.json()["error"]["code"]) == (status, code)


def test_the_websocket_error_frame_answers_the_lone_error() -> None:
    nested = ExceptionGroup("o", [ExceptionGroup("i", [DuplicateRequestId("r")])])
    assert error_frame_payload(nested)[0] == 409
    assert error_frame_payload(ExceptionGroup("two", [a, b]))[0] == 500


def _main_raising(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: BaseException) -> int:
    async def serve(settings: Settings) -> None:
        raise exc
    monkeypatch.chdir(tmp_path)  # no config/local.toml here
    for name in [k for k in os.environ if k.startswith("CLAUDE_CODE__")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(cli_main, "serve", serve)
    monkeypatch.setattr(cli_main, "configure_logging", lambda settings: None)
    return cli_main.main(["--port", "0"])


def test_main_reports_a_bind_failure_from_inside_a_group(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bind = OSError(98, "Address already in use")
    group = ExceptionGroup("serve", [ExceptionGroup("listen", [bind]), ValueError()])
    assert _main_raising(monkeypatch, tmp_path, group) == 1
    assert "cannot serve on" in capsys.readouterr().err


def test_main_reraises_a_group_without_an_os_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    group = ExceptionGroup("serve", [ValueError("v")])
    with pytest.raises(ExceptionGroup) as info:
        _main_raising(monkeypatch, tmp_path, group)
    assert info.value is group
