"""Themes load into Textual Theme objects; packaging ships them; the core stays Textual-free."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tui_agent.ui.themes import DEFAULT_THEME, load_themes, shipped_themes_dir, theme_from_file

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_themes_load() -> None:
    loaded = load_themes(extra_dirs=[])
    assert loaded.problems == []
    names = set(loaded.themes)
    assert {
        DEFAULT_THEME,
        "llamachat-light",
        "llamachat-high-contrast",
        "llamachat-forest",
    } <= names
    assert loaded.themes["llamachat-light"].dark is False
    assert shipped_themes_dir().is_dir()


def test_user_themes_and_broken_files(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        'name = "mine"\nprimary = "#ff0000"\nbackground = "#000000"\n'
    )
    (tmp_path / "broken.toml").write_text("name = [")
    (tmp_path / "badcolour.toml").write_text('primary = "not-a-colour"\n')
    (tmp_path / "typo.toml").write_text('primary = "#fff"\nbackgroud = "#000"\n')
    (tmp_path / "badvar.toml").write_text(
        'primary = "#fff"\n[variables]\n"footer-key-foreground" = "nope"\n"block-cursor-text-style" = "bold"\n'
    )
    loaded = load_themes([tmp_path])
    assert "mine" in loaded.themes
    problems = "\n".join(loaded.problems)
    assert "broken.toml: cannot read it" in problems
    assert "badcolour.toml: primary = 'not-a-colour' is not a colour" in problems
    assert "typo.toml: unknown key 'backgroud'" in problems
    assert "badvar.toml: [variables] footer-key-foreground = 'nope' is not a colour" in problems


def test_theme_needs_primary(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('name = "t"\n')
    with pytest.raises(ValueError, match="`primary`"):
        theme_from_file(path)


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "tui_agent").rglob("__init__.py")
    }
    assert found | {"tui_agent.themes"} == listed


def test_the_wheel_ships_themes_and_styles(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("llamachat-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tui_agent/themes/llamachat-dark.toml" in names
    assert "tui_agent/ui/app.tcss" in names and "tui_agent/py.typed" in names


def test_core_modules_do_not_import_textual() -> None:
    code = (
        "import sys, tui_agent.cli, tui_agent.agent.worker, tui_agent.session, tui_agent.tools.setup, "
        "tui_agent.store.recorder, tui_agent.commands.headless; "
        "print('textual' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
