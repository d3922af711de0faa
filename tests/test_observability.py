"""Tracing and structured logs: optional, but when on they describe every request."""

from __future__ import annotations

import io
import json
import logging

import pytest
from conftest import make_client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service import logs, tracing


def test_without_an_endpoint_there_is_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tracing.ENDPOINT, raising=False)
    assert tracing.middleware() is None


def test_with_an_endpoint_every_request_is_a_span(
    monkeypatch: pytest.MonkeyPatch, samples: dict[str, bytes]
) -> None:
    exported = InMemorySpanExporter()
    monkeypatch.setenv(tracing.ENDPOINT, "http://collector.invalid:4318")
    monkeypatch.setattr(tracing, "_exporter", lambda: exported)
    with make_client(api_keys="k") as client:
        client.post("/predict", files={"file": ("ba.png", samples["ba"], "image/png")})  # refused: 401
        client.get("/health")
        client.app.state.tracer_provider.force_flush()
    spans = exported.get_finished_spans()
    servers = [s for s in spans if s.kind.name == "SERVER"]
    statuses = sorted(
        s.attributes.get("http.status_code", s.attributes.get("http.response.status_code")) for s in servers
    )
    assert statuses == [200, 401]


def test_json_log_lines_are_one_object_each_with_the_request_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(logs.sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("info", "json")
        logging.getLogger("service.access").info(
            "POST /predict 200", extra={"request_id": "r-9", "status": 200, "key": "abc123"}
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["request_id"] == "r-9" and record["status"] == 200 and record["logger"] == "service.access"
    assert record["level"] == "INFO" and "time" in record
