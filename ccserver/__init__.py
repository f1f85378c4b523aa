"""ccserver: the Trio server that puts the Claude Code CLI behind the OpenAI API.

The dependency rule. A package may import its own modules and anything on a lower line
of `LAYERS`, never a higher line and never a neighbour on its own line. Every import
counts (inside functions and under ``TYPE_CHECKING`` too), and ccserver reaches ccproto
only through ``ccproto/__init__``. ``tests/test_layers.py`` checks this from the imports.

    __main__                  the command line
    serve                     Hypercorn's trio worker, signals, graceful shutdown
    app                       the ASGI callable: lifespan, route table, error boundary
    http | ws                 one module per route family; never each other
    gateway                   the composition root: the only module that names every
                              concrete service; gives core a frozen `TurnServices`
    core                      one turn for any surface: plan, conversation, admission,
                              attempts and retries, images, the response cache
    pool | conversations      which process serves a turn | which session a request
                              continues; never each other (core wires them)
    proc | edge | cluster     one CLI process: spawn, read, kill | ASGI plumbing:
                              auth, CORS, the access log, metrics | the shared Redis
                              that several gateways use
    errors | settings | fakeapi
                              the error tree | settings and start-up checks | the fake
                              Anthropic API the tests run the real CLI against
"""

from __future__ import annotations

__all__ = ["LAYERS"]

#: The dependency rule above, top line first: the parts of ccserver (subpackages, or
#: top-level modules) on each line.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__main__"}),
    frozenset({"serve"}),
    frozenset({"app"}),
    frozenset({"http", "ws"}),
    frozenset({"gateway"}),
    frozenset({"core"}),
    frozenset({"pool", "conversations"}),
    frozenset({"proc", "edge", "cluster"}),
    frozenset({"errors", "settings", "fakeapi"}),
)
