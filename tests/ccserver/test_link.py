"""The Redis link against a real redis-server: calls from any Trio task, bounded failures
that become 503s, start-up refused with a clear message, and recovery when Redis returns."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio

from ccserver.cluster.link import RedisLink, redact
from ccserver.errors import StoreUnavailable, error_payload
from tests.support.redis import free_port, running_redis


async def test_calls_from_a_task_that_did_not_open_the_loop(redis_url: str) -> None:
    link = RedisLink(redis_url, timeout=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        got: list[bytes | None] = []

        async def elsewhere() -> None:
            await link.call(lambda r: r.set("k", "v"))
            got.append(await link.call(lambda r: r.get("k")))

        async with trio.open_nursery() as other:  # not a child of the loop's task
            other.start_soon(elsewhere)
        assert got == [b"v"]
        nursery.cancel_scope.cancel()


async def test_no_redis_at_start_up_stops_with_the_url_and_what_to_do() -> None:
    link = RedisLink(f"redis://:secret@127.0.0.1:{free_port()}/0", timeout=1)
    with pytest.raises(RuntimeError) as caught:
        await link.run()
    message = str(caught.value)
    assert "does not answer" in message and "store_url" in message
    assert "secret" not in message and "***@127.0.0.1" in message


async def test_redis_lost_gives_503_then_recovers_by_itself(tmp_path: Path) -> None:
    with running_redis(tmp_path / "r") as server:
        link = RedisLink(server.url, timeout=1)
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            await link.call(lambda r: r.set("k", "kept"))
            server.stop()
            with pytest.raises(StoreUnavailable) as caught:
                await link.call(lambda r: r.get("k"))
            status, body, headers = error_payload(caught.value)
            assert status == 503 and body["error"]["code"] == "store_unavailable"
            assert ("retry-after", "1") in headers
            await trio.to_thread.run_sync(server.start)
            assert await link.call(lambda r: r.get("k")) == b"kept"  # appendfsync always
            nursery.cancel_scope.cancel()


async def test_a_redis_that_stops_answering_fails_within_the_bound(tmp_path: Path) -> None:
    """SIGSTOP: connected, silent. The call fails by its own timeout, not the test's."""
    with running_redis(tmp_path / "r") as server:
        link = RedisLink(server.url, timeout=0.5)
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            assert server.proc is not None
            server.proc.send_signal(signal.SIGSTOP)
            try:
                with pytest.raises(StoreUnavailable):
                    await link.call(lambda r: r.get("k"))
            finally:
                server.proc.send_signal(signal.SIGCONT)
            assert await link.call(lambda r: r.ping())
            nursery.cancel_scope.cancel()


def test_redact_hides_the_password_only() -> None:
    assert redact("redis://user:pw@host:1/0") == "redis://***@host:1/0"
    assert redact("redis://host:1/0") == "redis://host:1/0"


