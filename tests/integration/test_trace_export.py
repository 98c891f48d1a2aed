"""Each saved turn's spans sent on to an OpenTelemetry collector ([traces] otlp_endpoint): a
scripted model in the real session, recorder and history, and a stand-in collector that decodes
what arrives with OpenTelemetry's own schema. The real model's headless run is in
tests/model/test_trace_export_real.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.otlp_collector import collector
from tests.scripted import ScriptedBackend
from tests.serve_harness import scripted_session
from tests.ui.harness import make_config
from tui_agent.config import Config
from tui_agent.errors import ConfigError
from tui_agent.events import Completed, Event, Notice
from tui_agent.session import Session
from tui_agent.store.sessions import SessionStore
from tui_agent.store.trace_export import exporter_from_config, headers_from_env


def traced_session(tmp_path: Path, endpoint: str, protocol: str = "http/json") -> Session:
    config = make_config(
        tmp_path, f'[traces]\notlp_endpoint = "{endpoint}"\notlp_protocol = "{protocol}"\n'
    )
    session = scripted_session(tmp_path, config, ScriptedBackend(["Hello there."]))
    session.trace_exporter = exporter_from_config(
        config.traces, lambda problem: session._deliver(Notice(problem))
    )
    return session


def one_turn(session: Session) -> list[Event]:
    """Run a prompt to its end and close the session (which sends what is left)."""
    session.start()
    session.send("Hi")
    seen: list[Event] = []
    try:
        while not isinstance(event := session.events.get(timeout=30), Completed):
            seen.append(event)
        seen.append(event)
    finally:
        session.close()
    while not session.events.empty():
        seen.append(session.events.get())
    return seen


def saved_trace(config_db: Path, session_id: str) -> list[dict[str, object]]:
    store = SessionStore(config_db)
    try:
        [entry] = [e for e in store.entries(session_id) if e.kind == "trace"]
        spans: list[dict[str, object]] = entry.data["spans"]
        return spans
    finally:
        store.close()


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_a_turns_spans_reach_the_collector_as_saved(
    tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-mlflow-experiment-id=7,api-key=a%20b"
    )
    with collector() as otel:
        session = traced_session(tmp_path, otel.url, protocol)
        events = one_turn(session)
        assert otel.arrived.wait(10)
    [completed] = [e for e in events if isinstance(e, Completed)]
    assert completed.reason == "done"
    [request] = otel.received
    assert request.path == "/v1/traces"
    assert request.headers["x-mlflow-experiment-id"] == "7"
    assert request.headers["api-key"] == "a b"
    spans = request.spans()
    assert [s.name for s in spans] == ["turn", "model call"]
    assert spans[1].parent_span_id == spans[0].span_id
    attributes = {a.key: a.value for a in spans[0].attributes}
    session_id = attributes["gen_ai.conversation.id"].string_value
    saved = saved_trace(tmp_path / "h.db", session_id)
    assert spans[0].trace_id.hex() == saved[0]["trace_id"]
    assert [s.span_id.hex() for s in spans] == [s["span_id"] for s in saved]


def test_a_busy_collector_is_tried_again(tmp_path: Path) -> None:
    with collector() as otel:
        otel.statuses = [503]
        one_turn(traced_session(tmp_path, otel.url))
        assert otel.arrived.wait(10)
    assert len(otel.received) == 1


def test_a_collector_that_is_down_is_said_once_and_nothing_else_changes(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/v1/traces"  # nobody listens there
    session = traced_session(tmp_path, endpoint)
    events = one_turn(session)
    [completed] = [e for e in events if isinstance(e, Completed)]
    assert completed.reason == "done"
    notices = [e.message for e in events if isinstance(e, Notice) and "traces" in e.message]
    assert len(notices) == 1 and endpoint in notices[0]
    store = SessionStore(tmp_path / "h.db")
    try:
        [summary] = store.list_sessions()
        assert [e.kind for e in store.entries(summary.id)].count("trace") == 1
    finally:
        store.close()


def test_nothing_is_sent_unless_the_endpoint_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert exporter_from_config(Config().traces) is None


def test_bad_trace_settings_say_what_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, '[traces]\notlp_endpoint = "localhost:4318"\n')
    assert "otlp_endpoint" in caught.value.message and "http://" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, '[traces]\notlp_protocol = "grpc"\n')
    assert "otlp_protocol" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        headers_from_env({"OTEL_EXPORTER_OTLP_HEADERS": "api-key"})
    assert "key=value" in caught.value.message
    # http/protobuf without the `otel` extra installed
    monkeypatch.setitem(
        sys.modules, "opentelemetry.proto.collector.trace.v1.trace_service_pb2", None
    )
    config = make_config(
        tmp_path,
        '[traces]\notlp_endpoint = "http://127.0.0.1:1/v1/traces"\notlp_protocol = "http/protobuf"\n',
    )
    with pytest.raises(ConfigError) as caught:
        exporter_from_config(config.traces)
    assert "llamachat[otel]" in (caught.value.hint or "")
