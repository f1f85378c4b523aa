"""ccserver.proc.spawn against a real child process (tests/support/standin_cli.py).

Real clock throughout (subprocess I/O and autojump_clock do not mix, style-anchors §6.1);
every test runs under a `trio.fail_after` guard so a hang fails instead of blocking the suite.
Survivors are checked by (pid, starttime) in /proc: a zombie counts as a survivor, since
teardown promises the tree is reaped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from ccproto import Invocation
from ccserver.proc.spawn import (
    RUN_MARKER_ENV,
    CLIProcess,
    ProcessStartError,
    live_descendants,
    open_cli,
    sweep_orphans,
)
from ccserver.proc.tree import ProcInfo, is_same, read_info

STANDIN = Path(__file__).resolve().parents[1] / "support" / "standin_cli.py"
GUARD = 15.0  # seconds; generous for a loaded CI box, far below pytest's patience


def standin(*flags: str, stdin: bytes = b"") -> Invocation:
    return Invocation(
        argv=(sys.executable, str(STANDIN), *flags),
        env=dict(os.environ),
        stdin=stdin,
        cwd=str(STANDIN.parent),
    )


class Output:
    """stdout of a stand-in, read as it arrives."""

    def __init__(self, proc: CLIProcess) -> None:
        self.proc, self.data = proc, b""

    async def until(self, needle: bytes) -> None:
        while needle not in self.data:
            chunk = await self.proc.receive_some()
            assert chunk, f"EOF before {needle!r}; got {self.data!r}"
            self.data += chunk

    async def to_eof(self) -> bytes:
        while chunk := await self.proc.receive_some():
            self.data += chunk
        return self.data

    def pid(self, kind: str) -> ProcInfo:
        for line in self.data.decode().splitlines():
            name, _, value = line.partition(" ")
            if name == kind:
                info = read_info(int(value))
                assert info is not None, f"{kind} {value} already gone"
                return info
        raise AssertionError(f"no {kind} line in {self.data!r}")

    async def wait_pid(self, kind: str) -> ProcInfo:
        """The process the stand-in reports as ``<kind> <pid>``, once that line is complete."""
        while True:
            _, found, rest = self.data.partition(f"\n{kind} ".encode())
            if found and b"\n" in rest:
                return self.pid(kind)
            chunk = await self.proc.receive_some()
            assert chunk, f"EOF before {kind!r}; got {self.data!r}"
            self.data += chunk


def assert_gone(*infos: ProcInfo) -> None:
    survivors = [info for info in infos if is_same(info)]
    assert not survivors, f"survivors: {survivors}"


async def test_streams_stdout_as_it_is_written() -> None:
    with trio.fail_after(GUARD):
        async with open_cli(standin("--lines", "4", "--delay", "0.3")) as proc:
            out = Output(proc)
            await out.until(b"line 0\n")
            first = trio.current_time()
            assert b"line 3" not in out.data
            await out.until(b"line 3\n")
            assert trio.current_time() - first >= 0.6
            assert await out.to_eof() == b"ready\n" + b"".join(
                b"line %d\n" % i for i in range(4)
            )
            assert await proc.wait() == 0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [((), 0), (("--exit-code", "3"), 3), (("--kill-self", str(int(signal.SIGKILL))), -9)],
)
@pytest.mark.reliability
async def test_exit_codes(flags: tuple[str, ...], expected: int) -> None:
    with trio.fail_after(GUARD):
        async with open_cli(standin(*flags)) as proc:
            assert proc.returncode is None or proc.returncode == expected
            await Output(proc).to_eof()
            assert await proc.wait() == expected
            assert proc.returncode == expected


@pytest.mark.reliability
async def test_stderr_flood_neither_blocks_nor_grows() -> None:
    with trio.fail_after(GUARD):
        async with open_cli(standin("--stderr-mb", "8"), stderr_tail_bytes=4096) as proc:
            assert b"flooded" in await Output(proc).to_eof()
            assert await proc.wait() == 0
            tail = proc.stderr_tail()
            assert len(tail) == 4096
            assert tail.endswith(b"x\nSTDERR-END\n")
            assert set(tail[:-11]) == {ord("x"), ord("\n")}


async def test_complete_stdin_line_is_written_then_closed() -> None:
    with trio.fail_after(GUARD):
        inv = standin("--echo-stdin", stdin=b'{"type":"user"}\n')
        async with open_cli(inv) as proc:
            out = await Output(proc).to_eof()
            assert out == b'ready\necho {"type":"user"}\nstdin eof\n'
            assert await proc.wait() == 0


async def test_partial_stdin_keeps_pipe_open_until_teardown() -> None:
    with trio.fail_after(GUARD):
        async with open_cli(standin("--echo-stdin", stdin=b"no newline")) as proc:
            out = Output(proc)
            await out.until(b"ready\n")
            with trio.move_on_after(0.5):  # deadline: the stand-in must still be waiting
                await out.to_eof()
            assert b"stdin eof" not in out.data
        assert proc.returncode == 1  # stopped by teardown's SIGINT


@pytest.mark.reliability
async def test_stdin_broken_pipe_is_not_an_error() -> None:
    with trio.fail_after(GUARD):
        # The stand-in exits without reading; 8 MiB cannot fit in the pipe buffer.
        async with open_cli(standin(stdin=b"x" * (8 << 20) + b"\n")) as proc:
            await Output(proc).to_eof()
            assert await proc.wait() == 0


async def test_live_descendants_sees_own_session_tool() -> None:
    with trio.fail_after(GUARD):
        async with open_cli(standin("--tool", "--hang")) as proc:
            out = Output(proc)
            await out.wait_pid("grandchild")
            child, grandchild = out.pid("child"), out.pid("grandchild")
            assert child.sid == child.pid != proc.pid  # its own session, like the Bash tool
            assert {child.pid, grandchild.pid} <= set(live_descendants(proc.pid))
        assert_gone(child, grandchild)


@pytest.mark.parametrize("on_sigint", ["clean", "orphan"])
async def test_cancellation_kills_cli_and_its_own_session_tool(on_sigint: str) -> None:
    with trio.fail_after(GUARD):
        with trio.CancelScope() as scope:
            async with open_cli(standin("--tool", "--hang", "--sigint", on_sigint)) as proc:
                out = Output(proc)
                await out.wait_pid("grandchild")
                cli = read_info(proc.pid)
                child, grandchild = out.pid("child"), out.pid("grandchild")
                scope.cancel()  # as a client disconnect would
                start = trio.current_time()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert trio.current_time() - start < 1.5  # SIGINT path: no grace period used up
        assert proc.returncode == 1
        assert cli is not None
        assert_gone(cli, child, grandchild)


async def test_cli_blocked_on_a_full_stdout_pipe_still_stops_on_sigint() -> None:
    with trio.fail_after(GUARD):
        with trio.CancelScope() as scope:
            async with open_cli(standin("--stdout-mb", "4", "--hang")) as proc:
                await Output(proc).until(b"ready\n")
                await trio.sleep(0.3)  # the caller stops reading; the stand-in fills the pipe
                scope.cancel()  # as a client disconnect would
                start = trio.current_time()
                await trio.sleep_forever()
        assert proc.returncode == 1  # it wrote its last line and exited by itself
        assert trio.current_time() - start < 1.0


async def test_stderr_is_drained_while_a_cancelled_run_stops() -> None:
    with trio.fail_after(GUARD):
        with trio.CancelScope() as scope:
            async with open_cli(standin("--hang", "--sigint-stderr-kb", "512")) as proc:
                await Output(proc).until(b"ready\n")
                scope.cancel()
                await trio.sleep_forever()
        assert proc.returncode == 1  # 512 KiB on stderr did not block its exit
        assert proc.stderr_tail().endswith(b"zzz" + b"SIGINT-END\n")


@pytest.mark.reliability
async def test_sigint_and_sigterm_ignored_escalates_to_sigkill() -> None:
    with trio.fail_after(GUARD):
        flags = ("--tool", "--hang", "--sigint", "ignore", "--ignore-sigterm")
        with trio.move_on_after(2.0) as scope:  # deadline: the "request timeout"
            async with open_cli(standin(*flags), kill_grace=0.3) as proc:
                out = Output(proc)
                await out.wait_pid("grandchild")
                child, grandchild = out.pid("child"), out.pid("grandchild")
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert proc.returncode == -signal.SIGKILL
        assert_gone(child, grandchild)


@pytest.mark.reliability
async def test_orphan_left_by_normal_exit_is_swept() -> None:
    with trio.fail_after(GUARD):
        async with open_cli(standin("--orphan")) as proc:
            out = Output(proc)
            await out.to_eof()
            assert await proc.wait() == 0
            orphan = out.pid("orphan")
            assert orphan.alive
            assert orphan.ppid == os.getpid()  # reparented to us: we are a child subreaper
        assert_gone(orphan)


@pytest.mark.reliability
async def test_tool_tree_left_by_normal_exit_is_swept() -> None:
    with trio.fail_after(GUARD):
        async with open_cli(standin("--tool", "--exit-code", "2")) as proc:
            out = Output(proc)
            await out.to_eof()
            assert await proc.wait() == 2
            child, grandchild = out.pid("child"), out.pid("grandchild")
        assert_gone(child, grandchild)


@pytest.mark.reliability
async def test_body_exception_propagates_unwrapped_and_cleans_up() -> None:
    with trio.fail_after(GUARD):
        with pytest.raises(ValueError, match="boom") as info:
            async with open_cli(standin("--tool", "--hang")) as proc:
                out = Output(proc)
                await out.wait_pid("grandchild")
                child, grandchild = out.pid("child"), out.pid("grandchild")
                raise ValueError("boom")
        assert not isinstance(info.value.__context__, BaseExceptionGroup)
        assert proc.returncode == 1
        assert_gone(child, grandchild)


@pytest.mark.parametrize("kind", ["missing", "not executable", "bad cwd"])
@pytest.mark.reliability
async def test_unstartable_cli_raises_process_start_error(kind: str, tmp_path: Path) -> None:
    script = tmp_path / "claude"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    argv = str(tmp_path / "missing") if kind == "missing" else str(script)
    cwd = str(tmp_path / "nowhere") if kind == "bad cwd" else str(tmp_path)
    if kind == "bad cwd":
        script.chmod(0o755)
    inv = Invocation(argv=(argv,), env={}, stdin=b"", cwd=cwd)
    with trio.fail_after(GUARD):
        with pytest.raises(ProcessStartError):
            async with open_cli(inv):
                raise AssertionError("not reached")


async def test_concurrent_run_survives_a_cancelled_one() -> None:
    with trio.fail_after(GUARD):
        a_procs: list[ProcInfo] = []
        b_done = trio.Event()

        async def run_a() -> None:
            flags = ("--tool", "--daemon", "--lines", "30", "--delay", "0.05")
            async with open_cli(standin(*flags)) as proc:
                out = Output(proc)
                a_procs.append(await out.wait_pid("child"))
                a_procs.append(await out.wait_pid("grandchild"))
                # Orphaned mid-run, so reparented to us: only its live token protects it
                # from B's sweep.
                daemon = await out.wait_pid("daemon")
                assert daemon.ppid == os.getpid()
                a_procs.append(daemon)
                await b_done.wait()
                assert all(is_same(info) for info in a_procs), "B's teardown touched A"
                assert (await out.to_eof()).count(b"line ") == 30
                assert await proc.wait() == 0

        async def run_b() -> None:
            with trio.CancelScope() as scope:
                flags = ("--tool", "--daemon", "--hang", "--sigint", "orphan")
                async with open_cli(standin(*flags)) as proc:
                    out = Output(proc)
                    b_procs = [await out.wait_pid(kind) for kind in ("child", "daemon")]
                    while len(a_procs) < 3:  # deadline: GUARD; A is up within a second
                        await trio.sleep(0.01)
                    scope.cancel()
                    await trio.sleep_forever()
            assert_gone(*b_procs)
            b_done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_a)
            nursery.start_soon(run_b)
        assert_gone(*a_procs)


async def test_cancellation_finds_a_tool_that_scrubbed_its_environment() -> None:
    with trio.fail_after(GUARD):
        # `env -i` in a tool drops the run token: only the tree recorded before SIGINT
        # (by ppid chains) finds the process the CLI orphans on its way out.
        flags = ("--tool", "--hang", "--sigint", "orphan", "--scrub-env")
        with trio.CancelScope() as scope:
            async with open_cli(standin(*flags)) as proc:
                out = Output(proc)
                child, grandchild = await out.wait_pid("child"), await out.wait_pid("grandchild")
                assert read_info(child.pid) is not None
                assert f"{RUN_MARKER_ENV}=" not in open(f"/proc/{child.pid}/environ").read()
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert_gone(child, grandchild)


async def test_sweep_orphans_is_quick_when_nothing_is_left() -> None:
    with trio.fail_after(GUARD):
        start = trio.current_time()
        await sweep_orphans()
        assert trio.current_time() - start < 0.5


async def test_children_not_started_by_open_cli_are_left_alone() -> None:
    with trio.fail_after(GUARD):
        # One in our session, one in its own: neither carries a run token.
        others = [
            await trio.lowlevel.open_process(
                ["sleep", "30"], stdin=subprocess.DEVNULL, start_new_session=own
            )
            for own in (False, True)
        ]
        try:
            async with open_cli(standin("--orphan")) as proc:
                out = Output(proc)
                await out.to_eof()
                orphan = out.pid("orphan")
            assert_gone(orphan)
            assert all(other.returncode is None for other in others)
        finally:
            for other in others:
                other.kill()
                assert await other.wait() == -signal.SIGKILL  # trio still owns the exit status


async def test_orphan_that_died_during_the_run_is_reaped() -> None:
    with trio.fail_after(GUARD):
        flags = ("--daemon", "--daemon-seconds", "0.1", "--lines", "1", "--delay", "0.5")
        async with open_cli(standin(*flags)) as proc:
            out = Output(proc)
            daemon = await out.wait_pid("daemon")
            await out.to_eof()
            now = read_info(daemon.pid)
            assert now is not None and not now.alive and now.ppid == os.getpid()  # our zombie
        assert_gone(daemon)


async def test_exit_status_of_other_children_in_our_session_is_never_stolen() -> None:
    with trio.fail_after(GUARD):
        other = await trio.lowlevel.open_process(["sh", "-c", "exit 7"])
        while (info := read_info(other.pid)) is not None and info.alive:
            await trio.sleep(0.01)  # deadline: GUARD; until it is an unreaped zombie
        async with open_cli(standin("--orphan")) as proc:
            await Output(proc).to_eof()
        assert await other.wait() == 7


async def test_interrupt_sends_sigint_to_the_cli() -> None:
    with trio.fail_after(GUARD):
        async with open_cli(standin("--tool", "--hang")) as proc:
            out = Output(proc)
            await out.wait_pid("grandchild")
            child = out.pid("child")
            await proc.interrupt()
            assert await proc.wait() == 1  # the stand-in's SIGINT handler, like the CLI's
            assert not is_same(child)  # the CLI stopped its own tool, as the real one does
