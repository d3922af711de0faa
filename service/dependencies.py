"""What a route may ask FastAPI for: the ready engine, or the metrics.

Only these: cross-cutting concerns (request ids, limits, metrics, and any
auth to come) are ASGI middleware in :mod:`service.main`'s one stack, so they
apply to every route, the fast lane included. The fast lane checks at start-up
that ``POST /predict`` asks for nothing more than :data:`EngineDep`
(:mod:`service.fastlane`).

The dependencies are ``async`` although they never await, because FastAPI
runs plain ``def`` dependencies in the thread pool, and a thread hop costs
more than the lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.engine import InferenceEngine
from service.errors import APIError
from service.metrics import Metrics


def ready_engine(engine: InferenceEngine | None) -> InferenceEngine:
    """The engine if it may serve, else the 503 a client may retry (shared with the fast lane)."""
    if engine is None or not engine.ready:
        raise APIError("model_not_ready", "the model is not loaded yet; retry once /ready answers 200")
    return engine


async def get_engine(request: Request) -> InferenceEngine:
    return ready_engine(request.app.state.engine)


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


EngineDep = Annotated[InferenceEngine, Depends(get_engine)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
