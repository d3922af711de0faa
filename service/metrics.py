"""Prometheus metrics, kept in a registry per app.

A per-app registry (not the process-global default) lets tests build many apps
in one process and lets ``/metrics`` show only this service's series.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Buckets for the latency objectives (p50 <= 5 ms, p99 <= 20 ms) and a slow tail.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# The ``*_created`` companion series double the exposition size and no dashboard uses them.
disable_created_metrics()


class Metrics:
    """Every series the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "lpr_http_requests",
            "HTTP requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lpr_http_request_duration_seconds",
            "Time from request start to the last response byte, by endpoint, method and status.",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.images_classified = Counter(
            "lpr_images_classified",
            "Images classified, by predicted label.",
            ["label"],
            registry=self.registry,
        )
        self.images_rejected = Counter(
            "lpr_images_rejected",
            "Uploaded images refused, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "lpr_model_inference_seconds",
            "Time in ONNX Runtime per inference call (one per dynamic batch of /predict; a few per batch).",
            buckets=INFERENCE_BUCKETS,
            registry=self.registry,
        )
        self.inference_batch_size = Histogram(
            "lpr_model_inference_batch_size",
            "Images per ONNX Runtime inference call.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "lpr_model_info",
            "The loaded model (always 1; the labels carry the information).",
            ["name", "version", "sha256"],
            registry=self.registry,
        )
        self.ready = Gauge("lpr_ready", "1 once the model is loaded and warmed up.", registry=self.registry)
        self.in_flight = Gauge(
            "lpr_http_requests_in_flight",
            "HTTP requests received and not yet answered.",
            registry=self.registry,
        )

    def observe_inference(self, seconds: float, batch_size: int) -> None:
        self.inference_seconds.observe(seconds)
        self.inference_batch_size.observe(batch_size)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request at the ASGI level.

    Pure ASGI rather than ``BaseHTTPMiddleware``: it sees the real status of
    every answer (including 413s sent before routing and error handlers'
    answers) and adds no task or stream wrapping to the hot path.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, endpoints: Iterable[str | None]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = frozenset(e for e in endpoints if e)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Unknown paths share one label so scanners cannot blow up the series count.
        endpoint = scope["path"] if scope["path"] in self.endpoints else "unmatched"
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self.metrics
        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            metrics.in_flight.dec()
            labels = (endpoint, scope["method"], str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
