"""A plain OTLP/HTTP receiver: the spans a server exports as JSON, parsed."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OtlpReceiver", "attribute"]


class OtlpReceiver:
    """Listens on 127.0.0.1 (port 0) for POST /v1/traces in a thread of its own."""

    def __init__(self) -> None:
        #: Every span received, in arrival order, as OTLP's JSON has it.
        self.spans: list[dict[str, Any]] = []
        #: The content type and the service.name of each resource's batch.
        self.batches: list[tuple[str | None, str | None]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for the server."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _receive(self, content_type: str | None, body: dict[str, Any]) -> None:
        with self._lock:
            for resource_spans in body["resourceSpans"]:
                resource = resource_spans.get("resource", {})
                self.batches.append((content_type, attribute(resource, "service.name")))
                for scope_spans in resource_spans.get("scopeSpans", []):
                    self.spans.extend(scope_spans.get("spans", []))


def attribute(item: dict[str, Any], key: str) -> str | int | None:
    """A string or int attribute of a span or resource in OTLP JSON (ints come as strings)."""
    for pair in item.get("attributes", []):
        if pair["key"] == key:
            value = pair["value"]
            return int(value["intValue"]) if "intValue" in value else value.get("stringValue")
    return None


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self._body()
            if self.path != "/v1/traces":
                self._answer(404)
                return
            receiver._receive(self.headers.get("content-type"), json.loads(body))
            self._answer(200)

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("content-length", "0")))
            # Node's exporter pipes the body: chunked, no content-length.
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reads what arrived

    return Handler
