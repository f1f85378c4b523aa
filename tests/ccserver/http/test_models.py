"""GET /v1/models and /v1/models/{id}: answered from settings and the CLI found at start-up."""

from __future__ import annotations

from ccserver.app import App
from tests.support.asgi_client import request
from tests.support.settings import SettingsFactory


async def test_the_list_and_each_model(app: App) -> None:
    listing = await request(app, "GET", "/v1/models")
    assert listing.status == 200
    body = listing.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert "sonnet" in ids and all(m["object"] == "model" for m in body["data"])
    for model_id in ids:
        one = await request(app, "GET", f"/v1/models/{model_id}")
        assert one.status == 200 and one.json()["id"] == model_id


async def test_an_unknown_model_is_a_404(app: App) -> None:
    response = await request(app, "GET", "/v1/models/gpt-nonsense")
    assert response.status == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"


async def test_configured_models_are_listed_without_a_cli(make_settings: SettingsFactory) -> None:
    # Not started: no CLI was found, so the list comes from the settings alone.
    app = App(make_settings(server={"models": ["claude-sonnet-5"]},
                            claude={"model_map": {"gpt-4o": "sonnet"}}))
    ids = [m["id"] for m in (await request(app, "GET", "/models")).json()["data"]]
    assert {"sonnet", "claude-sonnet-5", "gpt-4o"} <= set(ids)
    assert (await request(app, "GET", "/v1/models/gpt-4o/")).status == 200
    assert (await request(app, "POST", "/v1/models")).status == 405
