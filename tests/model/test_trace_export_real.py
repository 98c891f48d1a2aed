"""A headless run on the real demo model sends its turn's spans to a collector when
[traces] otlp_endpoint is set, as protobuf, with the headers from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import headless_config, run_cli
from tests.otlp_collector import collector
from tui_agent.store.sessions import SessionStore

pytestmark = pytest.mark.model


def test_a_headless_turn_is_traced_to_the_collector(tmp_path: Path) -> None:
    config = headless_config(tmp_path, max_tokens=24)
    with collector() as otel:
        with config.open("a") as file:
            file.write(f'[traces]\notlp_endpoint = "{otel.url}"\notlp_protocol = "http/protobuf"\n')
        env = {"OTEL_EXPORTER_OTLP_HEADERS": "x-mlflow-experiment-id=3"}
        result = run_cli(
            "--config", str(config), "-p", "Say hi.", "--output-format", "json", env=env
        )
        assert result.returncode == 0, result.stderr
    session_id = json.loads(result.stdout)["session_id"]
    [request] = otel.received  # sent before the run ended
    assert request.headers["x-mlflow-experiment-id"] == "3"
    spans = request.spans()
    assert [s.name for s in spans][:2] == ["turn", "model call"]
    model_call = {a.key: a.value for a in spans[1].attributes}
    assert model_call["gen_ai.conversation.id"].string_value == session_id
    assert model_call["gen_ai.usage.output_tokens"].int_value > 0
    store = SessionStore(tmp_path / "history.db")
    try:
        [trace] = [e for e in store.entries(session_id) if e.kind == "trace"]
    finally:
        store.close()
    assert spans[0].trace_id.hex() == trace.data["spans"][0]["trace_id"]
