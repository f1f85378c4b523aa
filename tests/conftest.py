"""Shared fixtures, and a `trio.fail_after` guard around every trio test.

Fixtures: `make_settings` builds `Settings` whose files all live in the test's tmp_path;
`replay_cli` is a stand-in for the `claude` binary that replays a recorded transcript;
`redis_server` is one real ``redis-server`` for the whole run (tests take their own db keys
by prefix, see `redis_url`).

The guard: pytest-trio turns each async test into a sync function at `pytest_runtest_call`;
just before it does, this file's hook wraps the async test function in `trio.fail_after`,
so a test that hangs fails with `trio.TooSlowError` instead of blocking the suite. The
default is generous (the machine may be slow and busy); `@pytest.mark.fail_after(seconds)`
changes it for one test. It covers the test body, not fixture set-up or teardown.

The leftover check: every process the tests start inherits ``CCTEST_RUN=<pid>-<random>``
(set before the first test); after the last one, and after every fixture was torn down, the
process table must hold no live process with that tag (polled for a while: a retired CLI may
still be exiting). One is a failure of the whole run, listed by pid and command line.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Awaitable, Callable, Generator, Iterator
from inspect import iscoroutinefunction
from pathlib import Path
from typing import Any

import pytest
import redis
import trio

from tests.support.gateway import RUN_TAG_ENV, tagged, wait_until
from tests.support.redis import RedisServer, running_redis
from tests.support.replay import ReplayCLI, replay_cli_in
from tests.support.settings import SettingsFactory, settings_under

#: Seconds a trio test may run before it fails: a guard against hangs, never a timing check.
DEFAULT_FAIL_AFTER = 60.0


#: Seconds the leftover check polls for tagged processes to go: a bound, not a timing check.
LEFTOVER_BOUND = 30.0


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(RUN_TAG_ENV, f"{os.getpid()}-{secrets.token_hex(4)}")
    config.addinivalue_line(
        "markers", "fail_after(seconds): the trio test fails after this long "
        f"(default {DEFAULT_FAIL_AFTER:g} s)")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Runs after every fixture's teardown: what is tagged now was left behind by the tests.
    tag = os.environ[RUN_TAG_ENV]
    wait_until(lambda: not tagged(tag, skip=os.getpid()), timeout=LEFTOVER_BOUND)
    left = tagged(tag, skip=os.getpid())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"process table: {len(left)} processes left by this run "
                            f"({RUN_TAG_ENV}={tag})")
        for pid, cmd in sorted(left.items()):
            reporter.write_line(f"  left running: {pid} {cmd[:200]}", red=True)
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _guarded(test: Callable[..., Awaitable[None]], seconds: float) -> Callable[..., Any]:
    @functools.wraps(test)
    async def guarded(*args: Any, **kwargs: Any) -> None:
        with trio.fail_after(seconds):
            await test(*args, **kwargs)

    return guarded


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    # tryfirst: this runs before pytest-trio's own pytest_runtest_call replaces the test.
    if isinstance(item, pytest.Function) and item.get_closest_marker("trio") is not None:
        marker = item.get_closest_marker("fail_after")
        seconds = float(marker.args[0]) if marker else DEFAULT_FAIL_AFTER
        hypothesis = getattr(item.obj, "hypothesis", None)
        if hypothesis is not None and iscoroutinefunction(hypothesis.inner_test):
            hypothesis.inner_test = _guarded(hypothesis.inner_test, seconds)
        elif iscoroutinefunction(item.obj):
            item.obj = _guarded(item.obj, seconds)
    yield


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """``make_settings(claude={"command": ...}, pool={"size": 0})``: `Settings` with the given
    fields per section, and the data dir, workspace and conversation store under tmp_path."""
    return settings_under(tmp_path)


@pytest.fixture
def replay_cli(tmp_path: Path) -> ReplayCLI:
    """A stand-in `claude` replaying text_stream until told otherwise (`ReplayCLI.play`)."""
    return replay_cli_in(tmp_path / "replay")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, its data emptied first: each test starts from nothing."""
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url
