"""The FastAPI application: the routers, one middleware stack, and the engine's lifespan.

How a request travels, outermost first:

1. :class:`~service.metrics.MetricsMiddleware`: counts, times and tracks in flight every request;
2. :class:`~service.limits.BodySizeLimitMiddleware`: per-route body limits, derived from how each
   upload route declares its body;
3. :class:`~service.fastlane.FastLane` (``LPR_FAST_LANE``): serves ``POST /predict`` without
   FastAPI's per-request machinery, through the same function as the route;
4. FastAPI: routing, the routers' dependencies (:mod:`service.dependencies`), the routes.

Cross-cutting concerns belong in that stack (a pure ASGI middleware added in
:func:`create_app`), never in a route's dependencies, so they apply to every
route, the fast lane's included. Adding an endpoint means one router file and
one entry in :data:`ROUTERS`: its metrics label and its body limit follow
from the route itself.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import service
from service.config import Settings
from service.engine import InferenceEngine
from service.errors import install_error_handlers
from service.fastlane import FastLane, check_lane
from service.limits import BodySizeLimitMiddleware, upload_limits
from service.metrics import Metrics, MetricsMiddleware
from service.routers import ops, page, plate, predict

logger = logging.getLogger("service")
# python-multipart logs every malformed body a client sends as a WARNING; the
# client already gets a 400, so that is not the operator's problem.
logging.getLogger("python_multipart").setLevel(logging.ERROR)

#: Every router of the API, in the order ``/docs`` lists them.
ROUTERS = (predict.router, plate.router, ops.router, page.router)

DESCRIPTION = """
Reads the characters of Nepali (Bagmati) motorbike licence plates: the digits
०–९, बा and प. Upload a cropped character (or a whole cropped plate to
`/read-plate`) as multipart/form-data; every error is JSON of the form
`{"error": {"code": "...", "message": "..."}}`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model before the first request is accepted.

    A missing or inconsistent model stops start-up with a clear error rather
    than a server that is up but answers every prediction with 503.
    """
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics
    # The batcher lets a request run alone only when no other HTTP request is in flight: the
    # count the metrics middleware keeps for every request.
    load = partial(
        InferenceEngine.load, settings, metrics, others_in_flight=lambda: metrics.requests_in_flight > 1
    )
    engine = await run_in_threadpool(load)
    app.state.engine = engine
    # Everything alive now (modules, the model, the app) lives as long as the process: moved out
    # of the collector's reach, a full collection under load no longer walks all of it.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        # uvicorn has already let the requests in flight finish; what is queued still runs.
        metrics.ready.set(0)
        app.state.engine = None
        engine.close()


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
    app.state.engine = None
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    routes = [route for router in ROUTERS for route in router.routes]
    # add_middleware wraps what is already there: innermost first.
    if settings.fast_lane:
        check_lane(routes)
        app.add_middleware(FastLane, state=app.state)
    app.add_middleware(BodySizeLimitMiddleware, limits=upload_limits(routes, settings))
    endpoints = {app.openapi_url, app.docs_url, app.redoc_url} | {route.path for route in routes}
    app.add_middleware(MetricsMiddleware, metrics=metrics, endpoints=endpoints)
    return app


app = create_app()
