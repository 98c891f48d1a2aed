"""Colour themes from TOML files: the ones llamachat ships and the user's own.

Shipped themes live in the top-level ``themes/`` folder, installed as the ``tui_agent.themes``
package data; users add ``*.toml`` files to ``<config dir>/themes/``. A broken file is skipped with
a message naming the file and the problem; it never stops the app.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.theme import Theme

import tui_agent

DEFAULT_THEME = "llamachat-dark"
_COLOUR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)


@dataclass
class LoadedThemes:
    themes: dict[str, Theme] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def shipped_themes_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("tui_agent.themes")))
    except ModuleNotFoundError:  # a source checkout or editable install: the top-level folder
        return Path(tui_agent.__file__).resolve().parent.parent / "themes"


def user_themes_dir() -> Path:
    import platformdirs

    return platformdirs.user_config_path("llamachat") / "themes"


def load_themes(extra_dirs: list[Path] | None = None) -> LoadedThemes:
    loaded = LoadedThemes()
    for directory in [
        shipped_themes_dir(),
        *(extra_dirs if extra_dirs is not None else [user_themes_dir()]),
    ]:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                theme = theme_from_file(path)
            except ValueError as exc:
                loaded.problems.append(str(exc))
                continue
            loaded.themes[theme.name] = theme
    return loaded


def theme_from_file(path: Path) -> Theme:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"theme {path}: cannot read it: {exc}") from exc
    name = data.get("name") or path.stem
    if not isinstance(name, str):
        raise ValueError(f"theme {path}: `name` must be a string")
    if not isinstance(data.get("primary"), str):
        raise ValueError(f'theme {path}: `primary` (a colour like "#7aa2f7") is required')
    unknown = set(data) - {"name", "dark", "variables", *_COLOUR_KEYS}
    if unknown:
        raise ValueError(
            f"theme {path}: unknown key {sorted(unknown)[0]!r}; colours are {', '.join(_COLOUR_KEYS)}"
        )
    colours = {k: data[k] for k in _COLOUR_KEYS if k in data}
    for key, value in colours.items():
        if not isinstance(value, str) or not _is_colour(value):
            raise ValueError(f'theme {path}: {key} = {value!r} is not a colour (use "#rrggbb")')
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ValueError(f"theme {path}: [variables] must map names to strings")
    dark = bool(data.get("dark", True))
    theme = Theme(name=name, dark=dark, variables=dict(variables), **colours)
    # A variable that holds a colour must get one: Textual only finds out while restyling the
    # running app, and then the app quits.
    defaults = Theme(name=name, dark=dark, **colours).to_color_system().generate()
    for key, value in variables.items():
        if _is_colour(defaults.get(key, "")) and not _is_colour(value):
            raise ValueError(f"theme {path}: [variables] {key} = {value!r} is not a colour")
    return theme


def _is_colour(value: str) -> bool:
    from textual.color import Color, ColorParseError

    if not value:
        return False
    try:
        Color.parse(value)
    except ColorParseError:
        return False
    return True
