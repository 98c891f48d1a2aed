"""A stand-in OpenTelemetry collector on 127.0.0.1: it keeps what is POSTed to it and decodes
it with OpenTelemetry's own schema (opentelemetry-proto), JSON or protobuf alike."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def decoded(self) -> ExportTraceServiceRequest:
        if self.headers["content-type"] == "application/x-protobuf":
            return ExportTraceServiceRequest.FromString(self.body)
        data = json.loads(self.body)
        for resource in data["resourceSpans"]:  # OTLP/JSON ids are hex; the mapping reads base64
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in span:
                            span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        return json_format.ParseDict(data, ExportTraceServiceRequest())

    def spans(self) -> list[Any]:
        request = self.decoded()
        return [s for r in request.resource_spans for sc in r.scope_spans for s in sc.spans]


@dataclass
class Collector:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give first; then 200
    arrived: threading.Event = field(default_factory=threading.Event)


@contextmanager
def collector() -> Iterator[Collector]:
    state = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = state.statuses.pop(0) if state.statuses else 200
            if status == 200:
                headers = {k.lower(): v for k, v in self.headers.items()}
                state.received.append(Received(self.path, headers, body))
                state.arrived.set()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
