# Set-up is part of both entry points, so a fresh clone needs nothing but these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLI := node_modules/.bin/claude

.PHONY: setup serve test lint

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The pinned Claude Code CLI (and Codex CLI, a client the tests drive). npm may hold back the package's postinstall (which copies
# the platform binary into place); run it ourselves when the binary does not answer.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	$(CLI) --version || node node_modules/@anthropic-ai/claude-code/install.cjs
	$(CLI) --version
	node_modules/.bin/codex --version
	touch $@

serve: setup
	$(BIN)/ccserver $(ARGS)

lint: setup
	$(BIN)/ruff check ccproto ccserver tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(ARGS)
