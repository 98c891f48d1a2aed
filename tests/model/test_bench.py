"""`llamachat bench --quick` keeps working: the output's shape, not the speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.model

SECTIONS = (
    "Generation",
    "Prefix reuse",
    "Agent in-process vs on llama-server",
    "Drafting",
    "Serving over HTTP",
    "UI: streaming",
    "UI: drawing on and off",
    "Start-up",
    "Memory",
    "History",
)


@pytest.mark.timeout(660)  # a quick run takes 2.5 minutes here, more on a busy machine
def test_bench_quick_table_and_json_from_one_run(tmp_path: Path) -> None:
    saved = tmp_path / "bench.json"
    result = run_cli("bench", "--quick", "--json-file", str(saved), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("llamachat bench — ")
    assert "target ≥ 0.97" in result.stdout and (
        "✓ met" in result.stdout or "✗ missed" in result.stdout
    )
    report = json.loads(saved.read_text())
    assert report["machine"]
    figures = report["figures"]
    for section in SECTIONS:
        assert any(f["section"].startswith(section) for f in figures), section
    by_name = {f["name"]: f for f in figures}
    for name, target in [
        ("agent ÷ bare", "≥ 0.97"),
        ("agent ÷ raw", "≥ 0.95"),
        ("follow-up ÷ cold", "≤ 0.05"),
        ("app ÷ headless (bracketed)", "≤ 1.05"),
        ("event-loop lag p95", "≤ 10 ms"),
        ("app thread CPU, 40 earlier exchanges ÷ none", "≤ 1.2"),
        ("chat turn: reply time without ÷ with", "≥ 0.97"),
        ("edit-heavy turn: first token with ÷ without", "≤ 1.05"),
        ("RSS with ÷ without", "≤ 1.05"),
        ("tok/s through serve ÷ in-process", "≥ 0.95"),
        ("launch to first frame", "≤ 1 s"),
        ("llamachat --version", "≤ 0.3 s"),
        ("RSS 20 ÷ RSS 1", "≤ 1.05"),
        ("full-text search", "≤ 100 ms"),
    ]:
        figure = by_name[name]
        assert (
            figure["target"] == target
            and isinstance(figure["value"], float)
            and figure["value"] > 0
        )
        assert figure["met"] in (True, False)
        assert name in result.stdout, "the table shows what the JSON holds"
    assert not [f for f in figures if f["value"] is None], "no section may fail or be skipped"


def test_bench_only_names_the_sections_when_one_is_unknown(tmp_path: Path) -> None:
    result = run_cli("bench", "--only", "drafting,warp speed", timeout=120)
    assert result.returncode == 1
    assert "no bench section named 'warp speed'" in result.stderr
    assert "drafting" in result.stderr.split("hint:")[1] and not result.stdout
    # Said before any model loads: a model that is not there is never reached.
    missing = tmp_path / "missing.gguf"
    for model in (str(missing), "http://127.0.0.1:9/v1"):
        result = run_cli("bench", "--model", model, "--only", "warp speed", timeout=120)
        assert result.returncode == 1 and "no bench section named" in result.stderr, model


def test_bench_on_a_server_runs_the_model_sections_there(cpp_server: str, tmp_path: Path) -> None:
    saved = tmp_path / "bench.json"
    result = run_cli("bench", "--model", cpp_server, "--quick", "--json-file", str(saved))
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(saved.read_text())["figures"]
    assert {f["section"].split(" (")[0].split(" on ")[0] for f in figures} == {
        "Generation",
        "Prefix reuse",
    }
    by_name = {f["name"]: f for f in figures}
    for name in ("agent ÷ server", "follow-up ÷ new", "switch back to another session"):
        assert isinstance(by_name[name]["value"], float) and by_name[name]["value"] > 0, name
