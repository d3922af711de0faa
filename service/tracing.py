"""Optional OpenTelemetry tracing: one span per request, exported over OTLP/HTTP.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the ``otel`` extra is
installed (``pip install 'nepali-lpr[otel]'``): the serving install stays
light, and the standard ``OTEL_*`` variables (endpoint, headers,
``OTEL_SERVICE_NAME``) configure the exporter as they do everywhere else. The
middleware is the outermost layer, so a span covers everything the service
does for a request, refusals included.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger("service.tracing")

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


def _exporter() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer_provider() -> Any | None:
    """A tracer provider exporting to the configured collector, or ``None`` when tracing is off."""
    if not os.environ.get(ENDPOINT):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter = _exporter()
    except ImportError:
        logger.warning(
            "%s is set but OpenTelemetry is not installed (the 'otel' extra): no tracing", ENDPOINT
        )
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "nepali-lpr")})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    logger.info("tracing every request to %s", os.environ[ENDPOINT])
    return provider


def middleware() -> tuple[type, dict[str, Any]] | None:
    """The ASGI middleware class and its options, when tracing is on."""
    provider = tracer_provider()
    if provider is None:
        return None
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware, {"tracer_provider": provider}
