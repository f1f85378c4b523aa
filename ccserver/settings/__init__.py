"""Start-up settings: the sections (`sections`), how they are loaded (`load`), and what is
built from them once at start-up (`startup`: file access, MCP, the CLI plan options)."""

from __future__ import annotations

from .load import SettingRow, SettingsError, load_settings, settings_table
from .sections import ClaudeSettings, ServerSettings, Settings

__all__ = [
    "ClaudeSettings",
    "ServerSettings",
    "SettingRow",
    "Settings",
    "SettingsError",
    "load_settings",
    "settings_table",
]
