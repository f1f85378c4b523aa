"""Settings for tests: every file the gateway writes lives under one directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccserver.settings import Settings
from ccserver.settings.sections import SECTIONS

__all__ = ["SettingsFactory", "settings_under"]

#: ``make(claude={"command": ...}, pool={"size": 0})``: Settings with those fields per section.
SettingsFactory = Callable[..., Settings]


def settings_under(root: Path) -> SettingsFactory:
    """A factory of `Settings` whose data dir, workspace and conversation store are in ``root``."""

    def make(**sections: dict[str, Any]) -> Settings:
        fields: dict[str, dict[str, Any]] = {
            "server": {"data_dir": str(root / "data")},
            "claude": {"workspace": str(root / "workspace")},
            "conversation": {"store_path": str(root / "conversations.sqlite3")},
        }
        for name, values in sections.items():
            fields[name] = {**fields.get(name, {}), **values}
        return Settings(**{name: SECTIONS[name](**values) for name, values in fields.items()})

    return make
