"""Shared fixtures, and a `trio.fail_after` guard around every trio test.

The guard: pytest-trio turns each async test into a sync function at `pytest_runtest_call`;
just before it does, `_guard_trio_tests` wraps the async test function in `trio.fail_after`,
so a test that hangs fails with `trio.TooSlowError` instead of blocking the suite. The
default is generous (the machine may be slow and busy); `@pytest.mark.fail_after(seconds)`
changes it for one test. It covers the test body, not fixture set-up or teardown.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Generator
from inspect import iscoroutinefunction
from typing import Any

import pytest
import trio

#: Seconds a trio test may run before it fails: a guard against hangs, never a timing check.
DEFAULT_FAIL_AFTER = 60.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fail_after(seconds): the trio test fails after this long "
        f"(default {DEFAULT_FAIL_AFTER:g} s)")


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
