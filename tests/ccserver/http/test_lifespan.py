"""The app's ASGI lifespan: start-up finds and probes the CLI, shutdown completes."""

from __future__ import annotations

from ccserver.app import App
from tests.support.asgi_client import lifespan, request
from tests.support.replay import ReplayCLI
from tests.support.settings import SettingsFactory


async def test_start_up_finds_the_cli_and_health_reports_it(app: App, replay_cli: ReplayCLI) -> None:
    health = await request(app, "GET", "/health")
    assert health.status == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["cli"]["path"] == replay_cli.command
    assert body["cli"]["version"].startswith("2.1.197") and body["cli"]["logged_in"] is True


async def test_without_a_cli_chat_is_a_503_that_says_how_to_install_it(
        make_settings: SettingsFactory) -> None:
    app = App(make_settings(claude={"command": "/nonexistent/claude"}))
    async with lifespan(app):
        assert (await request(app, "GET", "/health")).status == 503
        body = b'{"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]}'
        response = await request(app, "POST", "/v1/chat/completions", body=body)
        assert response.status == 503
        assert "npm ci" in response.json()["error"]["message"]


async def test_shutdown_stops_the_gateway_and_completes(
        make_settings: SettingsFactory, replay_cli: ReplayCLI) -> None:
    app = App(make_settings(claude={"command": replay_cli.command}, pool={"size": 0}))
    async with lifespan(app) as sent:
        assert sent == ["lifespan.startup.complete"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
