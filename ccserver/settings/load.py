"""Loading the settings: defaults < TOML < env < flags, structured by cattrs.

Env vars are ``CLAUDE_CODE__<SECTION>__<KEY>``: the double underscores never collide with the
CLI's own ``CLAUDE_CODE_*`` variables.
"""

from __future__ import annotations

import json
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs

from .sections import SECTIONS as _SECTIONS
from .sections import Settings

__all__ = ["SettingRow", "SettingsError", "load_settings", "settings_table"]

ENV_PREFIX = "CLAUDE_CODE__"
DEFAULT_CONFIG_PATH = Path("config/local.toml")


class SettingsError(Exception):
    """A setting is unknown or has a bad value; the message names it. Start-up exits 2."""


class SettingRow(typing.NamedTuple):
    key: str  # "section.key"
    env: str
    default: str  # as TOML
    meaning: str


def settings_table() -> tuple[SettingRow, ...]:
    """One row per setting, in declaration order, for the README's configuration table."""
    rows = []
    for section, cls in _SECTIONS.items():
        for field, value in zip(attrs.fields(cls), attrs.astuple(cls()), strict=True):
            # astuple turns () into []; then every default's JSON is also its TOML.
            key, env = f"{section}.{field.name}", f"{ENV_PREFIX}{section}__{field.name}".upper()
            rows.append(SettingRow(key, env, json.dumps(value), field.metadata["meaning"]))
    return tuple(rows)


def load_settings(
    *, config_path: str | None, environ: Mapping[str, str], overrides: Mapping[str, object]
) -> Settings:
    """Defaults, then the TOML file, then ``CLAUDE_CODE__*`` in ``environ``, then ``overrides``.

    ``config_path`` None means ``config/local.toml`` if it exists. ``overrides`` (the command
    line) are keyed ``"section.key"``; None values are skipped. ``environ`` also resolves ``~``
    and ``$XDG_DATA_HOME``. Raises SettingsError naming the key that is unknown or bad.
    """
    layers: list[tuple[str, str, object]] = []  # (dotted key, source, value), lowest first
    path = Path(config_path) if config_path is not None else DEFAULT_CONFIG_PATH
    if config_path is not None or path.is_file():
        layers += [(key, str(path), value) for key, value in _read_toml(path)]
    for name, text in environ.items():
        if name.startswith(ENV_PREFIX):
            section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
            layers.append((f"{section}.{key}", name, _EnvText(text)))
    layers += [(k, "command line", v) for k, v in overrides.items() if v is not None]

    raw: dict[str, dict[str, object]] = {s: {} for s in _SECTIONS}
    origin: dict[str, str] = {}  # which layer set a key, for the error message
    for dotted, source, value in layers:
        section, _, key = dotted.partition(".")
        if section not in _SECTIONS or key not in attrs.fields_dict(_SECTIONS[section]):
            raise SettingsError(f"unknown setting {dotted.rstrip('.')} (from {source})")
        raw[section][key], origin[dotted] = value, source
    sections, errors = {}, []
    for section, cls in _SECTIONS.items():
        try:
            sections[section] = _CONVERTER.structure(raw[section], cls)
        except cattrs.ClassValidationError as exc:
            # Type errors name the attribute in a note; validators (run by __init__) don't,
            # so their messages start with "name: ".
            with_notes, without = exc.group_exceptions()
            found = [(note.name, str(e)) for e, note in with_notes]
            for key, reason in found + [str(e).partition(": ")[::2] for e in without]:
                source = origin.get(f"{section}.{key}", "default")
                errors.append(f"{section}.{key}: {reason} (from {source})")
    if errors:
        raise SettingsError("; ".join(errors))
    return _resolve_paths(Settings(**sections), environ)


def _read_toml(path: Path) -> list[tuple[str, object]]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"config file {path}: {exc}") from None
    # A top-level non-table such as `port = 1` becomes the key "port.", reported as unknown.
    tables = {s: t if isinstance(t, dict) else {"": t} for s, t in data.items()}
    return [(f"{s}.{k}", v) for s, table in tables.items() for k, v in table.items()]


class _EnvText(str):
    """An env var's text, which the structure hook parses as the field's type."""


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_KINDS = {bool: "true/false/1/0/yes/no", int: "an integer", float: "a number",
          tuple: "a list", Mapping: "a table"}  # fmt: skip


def _parse(text: str, kind: Any) -> Any:
    try:
        if kind is bool:
            return _BOOLS[text.strip().lower()]
        if kind in (int, float):
            return kind(text.strip())
        if kind is Mapping or (kind is tuple and text.lstrip().startswith("[")):
            return json.loads(text)
    except (KeyError, ValueError):
        raise ValueError(f"expected {_KINDS[kind]}, got {text!r}") from None
    return [p.strip() for p in text.split(",") if p.strip()] if kind is tuple else str(text)


def _strict(value: Any, tp: Any) -> Any:
    """Structure hook: no silent coercion (cattrs would turn "abc" into a list of letters)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, _EnvText):
        value = _parse(value, origin or tp)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"must be one of {', '.join(args)}, got {value!r}")
        return value
    if origin is tuple and isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return tuple(value)
    elif origin is Mapping and isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            return dict(value)
    if origin in (tuple, Mapping):
        raise ValueError(f"expected {_KINDS[origin]} of strings, got {value!r}")
    # bool is an int subclass: refuse it for numbers, and refuse numbers for bool.
    ok = (int, float) if tp is float else (tp,)
    if isinstance(value, bool) is not (tp is bool) or not isinstance(value, ok):
        raise ValueError(f"expected {tp.__name__}, got {value!r}")
    return tp(value)


_CONVERTER = cattrs.Converter()
for _leaf in (str, int, float, bool):
    _CONVERTER.register_structure_hook(_leaf, _strict)  # replaces cattrs's coercing int() etc.
_COMPOUND: tuple[object, ...] = (Literal, tuple, Mapping)
_CONVERTER.register_structure_hook_func(lambda t: typing.get_origin(t) in _COMPOUND, _strict)


def _resolve_paths(settings: Settings, environ: Mapping[str, str]) -> Settings:
    def expand(path: str) -> str:
        if path == "~" or path.startswith("~/"):
            path = environ.get("HOME", str(Path.home())) + path[1:]
        return os.path.abspath(path)  # relative to the current directory

    xdg = environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative $XDG_DATA_HOME is invalid and must be ignored.
    base = xdg if os.path.isabs(xdg) else "~/.local/share"
    data_dir = expand(settings.server.data_dir or os.path.join(base, "ccserver"))
    workspace = expand(settings.claude.workspace or os.path.join(data_dir, "workspace"))
    store = expand(settings.conversation.store_path
                   or os.path.join(data_dir, "conversations.sqlite3"))
    return attrs.evolve(
        settings,
        server=attrs.evolve(settings.server, data_dir=data_dir),
        claude=attrs.evolve(settings.claude, workspace=workspace),
        conversation=attrs.evolve(settings.conversation, store_path=store),
    )
