"""API keys: loading, the per-request check through the ASGI app, and the start-up refusal."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from ccproto import ProtocolError
from ccserver.app import App
from ccserver.edge.auth import Auth, bind_problem, is_loopback, load_keys, presented_key
from ccserver.settings import ServerSettings, Settings, SettingsError
from ccserver.settings.sections import AuthSettings
from tests.support.asgi_client import request

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-gw-0123456789abcdef"


def scope(*headers: tuple[str, str]) -> dict[str, object]:
    return {"headers": [(k.encode(), v.encode()) for k, v in headers]}


def app(**auth: object) -> App:
    return App(Settings(auth=AuthSettings(**auth)))  # type: ignore[arg-type]


def test_keys_come_from_the_setting_and_the_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# team keys\n\n  file-key-1  \nfile-key-2\n" + KEY + "\n")
    keys = load_keys(AuthSettings(api_keys=(KEY, " "), keys_file=str(keys_file)))
    assert keys == (KEY.encode(), b"file-key-1", b"file-key-2")


@pytest.mark.parametrize("content", [None, "", "# only a comment\n\n"])
def test_an_unreadable_or_empty_keys_file_fails_closed(tmp_path: Path, content: str | None) -> None:
    keys_file = tmp_path / "keys"
    if content is not None:
        keys_file.write_text(content)
    with pytest.raises(SettingsError, match=r"auth\.keys_file: .*keys"):
        load_keys(AuthSettings(keys_file=str(keys_file)))


@pytest.mark.parametrize(("headers", "expected"), [
    ((("authorization", f"Bearer {KEY}"),), KEY),
    ((("authorization", f"bearer   {KEY} "),), KEY),
    ((("x-api-key", KEY),), KEY),
    ((("authorization", "Basic abc"), ("x-api-key", KEY)), KEY),
    ((("authorization", "Bearer "),), None),
    ((), None),
])
def test_presented_key(headers: tuple[tuple[str, str], ...], expected: str | None) -> None:
    assert presented_key(scope(*headers)) == expected


def test_check_accepts_any_configured_key_and_refuses_others() -> None:
    auth = Auth(AuthSettings(api_keys=(KEY, "other-key")))
    auth.check(scope(("authorization", f"Bearer {KEY}")))
    auth.check(scope(("x-api-key", "other-key")))
    with pytest.raises(ProtocolError) as missing:
        auth.check(scope())
    with pytest.raises(ProtocolError) as wrong:
        auth.check(scope(("authorization", f"Bearer {KEY}x")))
    for info in (missing, wrong):
        assert info.value.status_hint == 401 and info.value.code == "invalid_api_key"
        assert KEY not in str(info.value)


def test_without_keys_everything_is_let_in() -> None:
    auth = Auth(AuthSettings())
    assert not auth.enabled
    auth.check(scope())


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.com", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("host", "auth", "refused"), [
    ("127.0.0.1", AuthSettings(), False),
    ("0.0.0.0", AuthSettings(), True),
    ("0.0.0.0", AuthSettings(api_keys=(KEY,)), False),
    ("0.0.0.0", AuthSettings(allow_unauthenticated=True), False),
    ("10.0.0.2", AuthSettings(), True),
])
def test_bind_problem(host: str, auth: AuthSettings, refused: bool) -> None:
    problem = bind_problem(Settings(server=ServerSettings(host=host), auth=auth))
    assert (problem is not None) is refused
    if problem:
        assert "auth.allow_unauthenticated" in problem and host in problem


def test_bind_problem_reports_a_bad_keys_file(tmp_path: Path) -> None:
    settings = Settings(auth=AuthSettings(keys_file=str(tmp_path / "missing")))
    assert "auth.keys_file" in (bind_problem(settings) or "")


def test_python_m_ccserver_refuses_a_network_bind_without_keys(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "ccserver", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to start" in done.stderr and "auth.api_keys" in done.stderr


async def test_requests_without_the_key_get_an_openai_401(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccserver.access")
    gateway = app(api_keys=(KEY,))
    missing = await request(gateway, "GET", "/v1/models")
    wrong = await request(gateway, "GET", "/v1/models", headers=[("authorization", "Bearer nope-" + KEY)])
    for response in (missing, wrong):
        assert response.status == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        assert set(error) == {"message", "type", "param", "code"}
        assert KEY not in response.body.decode()
        assert response.header("x-request-id")
    assert "nope-" not in caplog.text and KEY not in caplog.text


async def test_the_key_opens_every_route_and_health_stays_open() -> None:
    gateway = app(api_keys=(KEY,))
    bearer = await request(gateway, "GET", "/v1/models", headers=[("authorization", f"Bearer {KEY}")])
    api_key = await request(gateway, "GET", "/models", headers=[("x-api-key", KEY)])
    assert bearer.status == api_key.status == 200
    for path in ("/stats", "/metrics", "/openapi.json"):
        assert (await request(gateway, "GET", path)).status == 401
        assert (await request(gateway, "GET", path, headers=[("x-api-key", KEY)])).status == 200
    health = await request(gateway, "GET", "/health")
    assert health.status in (200, 503)  # open; 503 only says no CLI was found here


async def test_preflights_need_no_key() -> None:
    response = await request(app(api_keys=(KEY,)), "OPTIONS", "/v1/chat/completions")
    assert response.status == 204


async def test_without_keys_requests_pass() -> None:
    assert (await request(app(), "GET", "/v1/models")).status == 200
