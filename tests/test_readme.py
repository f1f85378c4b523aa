"""The README's promises that code can check: its set-up commands and settings table."""

from __future__ import annotations

from pathlib import Path

from ccserver.settings.__main__ import markdown_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_opens_with_the_two_setup_commands() -> None:
    block = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in block] == ["make serve", "make test"]


def test_settings_table_is_generated_from_the_code() -> None:
    # Regenerate with: .venv/bin/python -m ccserver.settings
    assert markdown_table() in README
