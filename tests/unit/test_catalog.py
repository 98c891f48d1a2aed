"""The models a user can pick: presets, a pre-populated HF cache (offline), named specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fake_hub import COMMIT, populate_cache
from tui_agent.models.catalog import IN_CACHE, choice_for, model_choices
from tui_agent.models.sources import PRESETS, HubFile, demo_model_path

SMALL = PRESETS["small"]
assert isinstance(SMALL, HubFile)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(target))
    populate_cache(
        target,
        "acme/story-GGUF",
        {
            "story.Q4_0.gguf": b"GGUF" + b"\0" * 60,
            "sub/story.Q8_0.gguf": b"GGUF" + b"\0" * 100,
            "README.md": b"# not a model",
        },
    )
    populate_cache(target, SMALL.repo_id, {SMALL.filename: b"GGUF" + b"\0" * 10})
    return target


def by_spec(choices: list) -> dict:  # type: ignore[type-arg]
    return {choice.spec: choice for choice in choices}


def test_an_empty_cache_lists_the_presets_only(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "nothing-here"))
    choices = by_spec(model_choices())
    assert list(choices) == list(PRESETS)
    assert choices["tiny"].path == demo_model_path() and choices["tiny"].size
    assert choices["small"].path is None and choices["small"].size is None
    assert choices["small"].origin == f"downloads from {SMALL.repo_id}"


def test_cached_ggufs_are_listed_with_their_sizes(cache: Path) -> None:
    choices = by_spec(model_choices())
    assert choices["acme/story-GGUF:story.Q4_0.gguf"].size == 64
    assert choices["acme/story-GGUF:sub/story.Q8_0.gguf"].size == 104
    assert choices["acme/story-GGUF:story.Q4_0.gguf"].origin == IN_CACHE
    assert not [spec for spec in choices if spec.endswith("README.md")]
    # A cached preset is listed once, under its name.
    assert choices["small"].origin == IN_CACHE and choices["small"].size == 14
    assert f"{SMALL.repo_id}:{SMALL.filename}" not in choices


def test_a_snapshot_link_without_its_blob_is_not_listed(cache: Path) -> None:
    snapshot = cache / "models--acme--story-GGUF" / "snapshots" / COMMIT
    (snapshot / "story.Q4_0.gguf").resolve().unlink()
    assert "acme/story-GGUF:story.Q4_0.gguf" not in by_spec(model_choices())


def test_named_specs_join_the_list_once(cache: Path, tmp_path: Path) -> None:
    local = tmp_path / "mine.gguf"
    local.write_bytes(b"GGUF" + b"\0" * 4)
    cached_path = cache / "models--acme--story-GGUF" / "snapshots" / COMMIT / "story.Q4_0.gguf"
    choices = model_choices(
        also=[
            str(local),
            str(tmp_path / "gone.gguf"),
            "huge",  # not a preset: reported where it was configured, not listed
            "demo",  # the "tiny" preset
            str(cached_path),  # the cached file, by its path
            "acme/story-GGUF:story.Q4_*.gguf",  # a glob matching one cached file
        ]
    )
    named = by_spec(choices)
    assert named[str(local)].origin == "local file" and named[str(local)].size == 8
    assert named[str(tmp_path / "gone.gguf")].origin == "file not found"
    assert "huge" not in named and "demo" not in named and str(cached_path) not in named
    assert len(choices) == len(PRESETS) + 2 + 2, "two cached files, two named ones"
    assert choice_for("demo", choices) is named["tiny"]
    assert choice_for(str(cached_path), choices) is named["acme/story-GGUF:story.Q4_0.gguf"]
    glob = choice_for("acme/story-GGUF:story.Q4_*.gguf", choices)
    assert glob is named["acme/story-GGUF:story.Q4_0.gguf"], "the one file the glob matches"
    assert choice_for("huge", choices) is None


def test_models_list_shows_the_cache(cache: Path) -> None:
    result = run_cli("models", "list")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "story.Q4_0.gguf" in line)
    assert row.startswith("acme/story-GGUF:story.Q4_0.gguf") and row.endswith("64 B")
    small = next(line for line in result.stdout.splitlines() if line.startswith("small"))
    assert "in HF cache" in small


def test_models_list_names_a_bad_configured_model(tmp_path: Path) -> None:
    result = run_cli("models", "list", "--model", "huge")
    assert result.returncode != 0
    assert "unknown model preset 'huge'" in result.stderr and "presets are" in result.stderr


def test_a_file_deleted_after_listing_has_no_size(cache: Path) -> None:
    [choice] = [c for c in model_choices() if c.spec == "acme/story-GGUF:story.Q4_0.gguf"]
    assert choice.path is not None
    choice.path.resolve().unlink()
    assert choice.size is None
