"""The FastAPI application: wiring only; behaviour lives in the modules it wires."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import service
from service.batching import MicroBatcher
from service.config import Settings
from service.dependencies import Runtime
from service.errors import install_error_handlers
from service.fastlane import FastLane
from service.limits import BodySizeLimitMiddleware
from service.metrics import Metrics, MetricsMiddleware
from service.model import Classifier
from service.routers import ops, page, plate, predict

logger = logging.getLogger("service")
# python-multipart logs every malformed body a client sends as a WARNING; the
# client already gets a 400, so that is not the operator's problem.
logging.getLogger("python_multipart").setLevel(logging.ERROR)

DESCRIPTION = """
Reads one character of a Nepali (Bagmati) motorbike licence plate: the digits
०–९, बा and प. Upload a cropped character as multipart/form-data; every error is
JSON of the form `{"error": {"code": "...", "message": "..."}}`.
"""


def load_classifier(settings: Settings, metrics: Metrics) -> Classifier:
    """Load and warm up the model; blocking, so the lifespan runs it in a thread."""
    classifier = Classifier(
        settings.resolved_model_path,
        settings.resolved_metadata_path,
        intra_op_threads=settings.intra_op_threads,
        inter_op_threads=settings.inter_op_threads,
        on_inference=metrics.observe_inference,
    )
    # A single image, a full dynamic batch and the largest upload batch, so no first request pays.
    classifier.warm_up(batch_sizes=(1, settings.batch_max_size, settings.max_batch_files))
    meta = classifier.metadata
    metrics.model_info.labels(meta.name, meta.version, classifier.sha256).set(1)
    metrics.ready.set(1)
    logger.info("serving %s from %s", meta.model_version, classifier.model_path)
    return classifier


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model before the first request is accepted.

    A missing or inconsistent model stops start-up with a clear error rather
    than a server that is up but answers every prediction with 503.
    """
    settings: Settings = app.state.settings
    classifier = await run_in_threadpool(load_classifier, settings, app.state.metrics)
    metrics: Metrics = app.state.metrics
    batcher = MicroBatcher(
        classifier,
        max_batch=settings.batch_max_size if settings.batching else 1,
        max_wait=settings.batch_max_wait_ms / 1000.0,
        others_in_flight=lambda: metrics.requests_in_flight > 1,
    )
    app.state.classifier = classifier
    app.state.runtime = Runtime(classifier, batcher, settings, app.state.metrics)
    # Everything alive now (modules, the model, the app) lives as long as the process: moved out
    # of the collector's reach, a full collection under load no longer walks all of it.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        # uvicorn has already let the requests in flight finish; what is queued still runs.
        app.state.metrics.ready.set(0)
        app.state.runtime = None
        batcher.close()
        classifier.close()
        app.state.classifier = None


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build an app; tests pass their own ``Settings`` instead of patching the environment."""
    settings = settings or Settings()
    app = FastAPI(
        title="Nepali licence-plate character recogniser",
        version=service.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    app.state.classifier = None
    app.state.runtime = None
    install_error_handlers(app)
    app.include_router(predict.router)
    app.include_router(ops.router)
    app.include_router(page.router)
    app.include_router(plate.router)
    # Added innermost first: the metrics middleware must see the limiter's 413s, and the
    # fast lane's requests must pass both.
    if settings.fast_lane:
        app.add_middleware(FastLane, state=app.state)
    app.add_middleware(
        BodySizeLimitMiddleware,
        limits={
            "/predict": settings.max_single_body_bytes,
            "/predict/batch": settings.max_batch_body_bytes,
            "/read-plate": settings.max_single_body_bytes,
        },
    )
    endpoints = {app.openapi_url, app.docs_url, app.redoc_url} | {
        route.path
        for router in (predict.router, ops.router, page.router, plate.router)
        for route in router.routes
    }
    app.add_middleware(MetricsMiddleware, metrics=metrics, endpoints=endpoints)
    return app


app = create_app()
