"""The bench suite: run each script as a module from the repo root, e.g.
``.venv/bin/python -m bench.ttft 8`` or ``.venv/bin/python -m bench.run_all``."""
