"""A stand-in for the `claude` binary in fast app tests: replays a transcript.

It takes whatever argv the gateway builds, reads the one stream-json user line from stdin
(and records it when REPLAY_STDIN_LOG is set), then prints REPLAY_FILE's lines with
REPLAY_DELAY seconds between them and exits with REPLAY_EXIT. The real CLI's behaviour
is proven in tests/e2e; this only makes the server's own logic quick to test.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    if "--version" in sys.argv:
        print("2.1.197 (Claude Code)")
        return 0
    if sys.argv[1:3] == ["auth", "status"]:
        print(json.dumps({"loggedIn": True, "authMethod": "api_key"}))
        return 0
    line = sys.stdin.readline()
    if log := os.environ.get("REPLAY_STDIN_LOG"):
        with open(log, "a") as f:
            f.write(json.dumps({"argv": sys.argv[1:], "stdin": line}) + "\n")
    delay = float(os.environ.get("REPLAY_DELAY", "0"))
    with open(os.environ["REPLAY_FILE"], "rb") as f:
        for raw in f:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            time.sleep(delay)
    sys.stderr.write(os.environ.get("REPLAY_STDERR", ""))
    return int(os.environ.get("REPLAY_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
