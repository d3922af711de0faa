"""Request-scoped access to the app's long-lived objects.

One dependency hands out everything a prediction needs: each extra FastAPI
dependency costs measurable time per request against a 5 ms latency budget.
It is ``async`` although it never awaits, because FastAPI runs plain ``def``
dependencies in the thread pool, and a thread hop costs more than the lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.batching import MicroBatcher
from service.config import Settings
from service.errors import APIError
from service.metrics import Metrics
from service.model import Classifier


@dataclass(frozen=True)
class Runtime:
    """What a prediction route uses: the warmed-up model, the settings and the metrics."""

    classifier: Classifier
    batcher: MicroBatcher
    settings: Settings
    metrics: Metrics


async def get_runtime(request: Request) -> Runtime:
    """The ready model and its companions, or a 503 the client may retry, never a crash."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None or not runtime.classifier.ready:
        raise APIError("model_not_ready", "the model is not loaded yet; retry once /ready answers 200")
    return runtime


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
