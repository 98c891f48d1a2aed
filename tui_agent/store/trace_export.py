"""Each turn's spans sent on to an OpenTelemetry collector (OTLP over HTTP), when configured.

Nothing leaves the machine unless ``[traces] otlp_endpoint`` names a collector; OTEL_* endpoint
variables set for other programs do not turn this on. The spans are those saved beside the
session (store/traces.py). A thread of their own sends them, so a slow or absent collector never
holds up a reply; what it could not send is logged and said once. ``http/json`` needs nothing
more (an MLflow 3.17 server's /v1/traces took it, as did protobuf); ``http/protobuf``, which
some collectors require, needs the ``otel`` extra (opentelemetry-proto). Headers (an API key, MLflow's x-mlflow-experiment-id) come from
OTEL_EXPORTER_OTLP_TRACES_HEADERS or OTEL_EXPORTER_OTLP_HEADERS, as OpenTelemetry's own
exporters read them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from tui_agent.config import TracesConfig
from tui_agent.errors import ConfigError
from tui_agent.store.traces import Span, otlp_json

log = logging.getLogger(__name__)

# OTLP/HTTP: these statuses mean "try again later"; others will not succeed by retrying.
_RETRYABLE = {429, 502, 503, 504}
_TRIES = 3
_TIMEOUT_SECONDS = 10.0
# How long the end of a run waits for spans still being sent.
CLOSE_WAIT_SECONDS = 5.0
_HEADER_VARS = ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")


class OtlpExporter:
    def __init__(
        self,
        endpoint: str,
        protocol: str = "http/json",
        headers: Mapping[str, str] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.protocol = protocol
        self.headers = dict(headers or {})
        self._encode = _protobuf_encoder() if protocol == "http/protobuf" else _json_bytes
        self._on_failure = on_failure
        self._told = False
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.sent = 0  # requests the collector took

    def export(self, session_id: str, model: str, spans: list[Span]) -> None:
        """Queue one turn's spans (called on the worker thread; returns at once)."""
        body = self._encode(otlp_json(session_id, model, [spans]))
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_all, name="llamachat-otlp")
            self._thread.daemon = True
            self._thread.start()
        self._queue.put(body)

    def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """Send what is queued, waiting at most ``wait`` seconds (a run that ends)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(wait)
        if self._thread.is_alive():
            self._fail(f"gave up sending traces to {self.endpoint} after {wait:g} s")

    def _send_all(self) -> None:
        while (body := self._queue.get()) is not None:
            self._post(body)

    def _post(self, body: bytes) -> None:
        content_type = (
            "application/x-protobuf" if self.protocol == "http/protobuf" else "application/json"
        )
        headers = {**self.headers, "Content-Type": content_type}
        for attempt in range(_TRIES):
            request = urllib.request.Request(self.endpoint, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
                    response.read()
                self.sent += 1
                return
            except urllib.error.HTTPError as exc:
                if exc.code not in _RETRYABLE or attempt == _TRIES - 1:
                    detail = exc.read(300).decode("utf-8", "replace").strip()
                    self._fail(f"{self.endpoint} refused the traces: HTTP {exc.code} {detail}")
                    return
            except (urllib.error.URLError, OSError) as exc:
                if attempt == _TRIES - 1:
                    reason = getattr(exc, "reason", exc)
                    self._fail(f"could not send traces to {self.endpoint}: {reason}")
                    return
            time.sleep(2**attempt)

    def _fail(self, message: str) -> None:
        log.warning("%s", message)
        if not self._told and self._on_failure is not None:
            self._told = True  # once: a collector that is down would say it every turn
            self._on_failure(f"{message} (more in the log; [traces] otlp_endpoint)")


def exporter_from_config(
    config: TracesConfig, on_failure: Callable[[str], None] | None = None
) -> OtlpExporter | None:
    if not config.otlp_endpoint:
        return None
    return OtlpExporter(
        config.otlp_endpoint, config.otlp_protocol, headers_from_env(os.environ), on_failure
    )


def headers_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """OpenTelemetry's header list: ``key=value,key2=value2``, values percent-encoded."""
    for name in _HEADER_VARS:
        if env.get(name):
            headers = {}
            for pair in env[name].split(","):
                key, sep, value = pair.partition("=")
                if not sep or not key.strip():
                    raise ConfigError(
                        f"{name}: {pair.strip()!r} is not key=value",
                        f"write it as key1=value1,key2=value2 (e.g. {name}=api-key=SECRET)",
                    )
                headers[key.strip()] = urllib.parse.unquote(value.strip())
            return headers
    return {}


def _json_bytes(otlp: dict[str, Any]) -> bytes:
    return json.dumps(otlp, ensure_ascii=False).encode("utf-8")


def _protobuf_encoder() -> Callable[[dict[str, Any]], bytes]:
    try:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError as exc:
        raise ConfigError(
            "[traces] otlp_protocol = http/protobuf needs the OpenTelemetry protobuf schema",
            "pip install 'llamachat[otel]', or set otlp_protocol = \"http/json\"",
        ) from exc

    def encode(otlp: dict[str, Any]) -> bytes:
        message = json_format.ParseDict(_base64_ids(otlp), ExportTraceServiceRequest())
        return bytes(message.SerializeToString())

    return encode


def _base64_ids(otlp: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON writes trace and span ids as hex; proto3's JSON mapping reads bytes as base64."""
    copy: dict[str, Any] = json.loads(json.dumps(otlp))
    for resource in copy["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode("ascii")
    return copy
