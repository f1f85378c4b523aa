"""Start-up settings: the sections (`sections`) and how they are loaded (`load`)."""

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
