"""The app as Hypercorn runs it, started through its lifespan, in front of the replay CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ccserver.app import App
from tests.support.asgi_client import lifespan
from tests.support.replay import ReplayCLI
from tests.support.settings import SettingsFactory


@pytest.fixture
async def app(make_settings: SettingsFactory, replay_cli: ReplayCLI) -> AsyncIterator[App]:
    # No warm pool and no idle processes: every turn is one replay run, started and finished.
    settings = make_settings(claude={"command": replay_cli.command, "extra_env": replay_cli.env},
                             pool={"size": 0, "idle_seconds": 0})
    served = App(settings)
    async with lifespan(served):
        yield served
