"""CLIStream: stdout bytes and the exit status of one CLI run in, records out.

Theory of operation, after h11's Connection: the caller owns all I/O. It passes whatever
it read from the CLI's stdout to `CLIStream.receive_data` (``b""`` once stdout is at EOF),
passes the exit status to `CLIStream.receive_exit` once the process was reaped, and calls
`CLIStream.next_event` until it returns `NEED_DATA`. Records come out in line order; the
final event is one `Exit`, produced only after EOF, the last line and the exit status have
all been seen, so no record can be lost behind the exit.

stdout is NDJSON, one record per line (reference §2.3). A last line without its newline
is still a line (reference samples p2_C_no_newline). A line longer than ``max_line_size``
is a protocol error: nothing legitimate is that large, and buffering without bound would
let one run exhaust the server's memory.
"""

from __future__ import annotations

import json
from typing import Final

from .cli_types import Exit, NonJSONLine, Record, parse_record
from .errors import CLIError

__all__ = ["DEFAULT_MAX_LINE_SIZE", "NEED_DATA", "CLIStream"]

# A stream-json line carries at most one API content block; images the CLI echoes back
# (a 2000 px screenshot is a few MB of base64) are the largest seen. 32 MiB leaves room.
DEFAULT_MAX_LINE_SIZE: Final = 32 * 1024 * 1024


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


class CLIStream:
    """Incremental NDJSON decoder for one CLI process's stdout.

    Args:
        max_line_size: the longest line accepted, in bytes, newline excluded.
    """

    def __init__(self, *, max_line_size: int = DEFAULT_MAX_LINE_SIZE) -> None:
        self.max_line_size = max_line_size
        self._buf = bytearray()
        # Where to resume the newline search, so that a long line arriving in many small
        # pieces is scanned once (O(n)), not once per piece (h11 _receivebuffer.py).
        self._scan_from = 0
        self._eof = False
        self._exit: Exit | None = None
        self._exit_delivered = False

    @property
    def eof(self) -> bool:
        return self._eof

    def receive_data(self, data: bytes) -> None:
        """Feed stdout bytes; ``b""`` means stdout reached EOF."""
        if self._eof:
            if data:
                raise RuntimeError("received data after EOF")
            return
        if data:
            self._buf += data
        else:
            self._eof = True

    def receive_exit(self, returncode: int, stderr_tail: bytes = b"") -> None:
        """Record how the process ended (negative returncode: killed by that signal)."""
        if self._exit is not None:
            raise RuntimeError("exit already received")
        self._exit = Exit(
            returncode=returncode, stderr_tail=stderr_tail.decode("utf-8", "replace")
        )

    def next_event(self) -> Record | Exit | _NeedData:
        """The next record, the final `Exit`, or `NEED_DATA`.

        Raises:
            CLIError: a line exceeded ``max_line_size``.
            RuntimeError: called again after `Exit` was returned.
        """
        if self._exit_delivered:
            raise RuntimeError("the stream already ended")
        while (line := self._next_line()) is not None:
            if line.strip():
                return _decode(line)
        if self._eof and self._exit is not None:
            self._exit_delivered = True
            return self._exit
        return NEED_DATA

    def _too_long(self) -> CLIError:
        return CLIError(
            f"Claude Code printed a line longer than {self.max_line_size} bytes",
            code="cli_output_too_large",
        )

    def _next_line(self) -> bytes | None:
        idx = self._buf.find(b"\n", self._scan_from)
        if idx < 0:
            if len(self._buf) > self.max_line_size:
                raise self._too_long()
            self._scan_from = len(self._buf)
            if not self._eof or not self._buf:
                return None
            idx = len(self._buf)  # unterminated last line at EOF
        if idx > self.max_line_size:
            raise self._too_long()
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        self._scan_from = 0
        return line


def _decode(line: bytes) -> Record:
    stripped = line.strip()
    try:
        obj = json.loads(stripped)
    except ValueError:
        return NonJSONLine(text=stripped.decode("utf-8", "replace"))
    return parse_record(obj)
