"""A running Claude Code CLI process: its stdout to read, stdin to write, stderr's tail.

`runner.open_cli` creates it, starts its stderr drain and tears the process down; this
class only wraps what a caller may do while the process runs.
"""

from __future__ import annotations

import signal

import attrs
import trio

__all__ = ["STDERR_SETTLE", "CLIProcess"]

STDERR_SETTLE = 0.5  # exit -> stderr EOF; only a leftover holding the pipe delays it


@attrs.define(eq=False)
class CLIProcess:
    """A running CLI, as handed out by `open_cli`. stdout is yours to read; stderr is
    drained in the background into a bounded tail."""

    _process: trio.Process
    _tail_limit: int
    _tail: bytearray = attrs.field(factory=bytearray, init=False)
    _stderr_done: trio.Event = attrs.field(factory=trio.Event, init=False)
    # Shielded: the tail keeps filling while teardown signals a cancelled run's CLI (which
    # must not block on a full pipe meanwhile); closing the pipe in teardown ends the drain.
    _drain_scope: trio.CancelScope = attrs.field(
        factory=lambda: trio.CancelScope(shield=True), init=False
    )

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        """The next stdout bytes; ``b""`` at EOF."""
        assert self._process.stdout is not None
        data = await self._process.stdout.receive_some(max_bytes)
        return data if isinstance(data, bytes) else bytes(data)

    async def wait(self) -> int:
        """Wait for exit; the return code is negative for a signal (``-9`` for SIGKILL)."""
        returncode = await self._process.wait()
        # Deadline: let the tail catch the last stderr bytes, unless a leftover holds the pipe.
        with trio.move_on_after(STDERR_SETTLE):
            await self._stderr_done.wait()
        return returncode

    def stderr_tail(self) -> bytes:
        return bytes(self._tail)

    async def send(self, data: bytes) -> None:
        """Write to the CLI's stdin (an `open_cli(keep_stdin=True)` process).

        Raises:
            trio.BrokenResourceError: the CLI has exited.
        """
        assert self._process.stdin is not None
        try:
            await self._process.stdin.send_all(data)
        except trio.ClosedResourceError:
            raise trio.BrokenResourceError("stdin was closed") from None

    async def close_stdin(self) -> None:
        """EOF on stdin: a persistent CLI finishes its turn, then exits (§6.2)."""
        if self._process.stdin is not None:
            await trio.aclose_forcefully(self._process.stdin)

    async def interrupt(self) -> None:
        """SIGINT to the CLI only: it ends the turn and stops its own tools (§9)."""
        self._process.send_signal(signal.SIGINT)  # a no-op once the CLI has been reaped
        await trio.lowlevel.checkpoint()

    async def _drain_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        try:
            with self._drain_scope:
                while chunk := await stream.receive_some(65536):
                    self._tail += chunk
                    del self._tail[: len(self._tail) - self._tail_limit]
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # teardown closed the pipe
        finally:
            self._stderr_done.set()
