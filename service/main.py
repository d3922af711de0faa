"""The FastAPI application: the routers, one middleware stack, and the engine's lifespan.

How a request travels, outermost first:

1. :class:`~service.request_context.RequestContextMiddleware`: the request id (echoed on every
   response, in every error body) and, with ``LPR_ACCESS_LOG``, the access-log line;
2. :class:`~service.metrics.MetricsMiddleware`: counts, times and tracks in flight every request;
3. :class:`~service.auth.APIKeyMiddleware` (when keys are configured): a key for every route that
   does not declare itself open;
4. :class:`~service.ratelimit.RateLimitMiddleware` (``LPR_RATE_LIMIT``): per key, on the same routes;
5. :class:`~service.limits.BodySizeLimitMiddleware`: per-route body limits, derived from how each
   upload route declares its body;
6. :class:`~service.fastlane.FastLane` (``LPR_FAST_LANE``): serves ``POST /predict`` without
   FastAPI's per-request machinery, through the same function as the route;
7. FastAPI: routing, the routers' dependencies (:mod:`service.dependencies`), the routes.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set and the ``otel`` extra installed, an OpenTelemetry
middleware wraps them all (:mod:`service.tracing`).

Cross-cutting concerns belong in that stack (a pure ASGI middleware added in
:func:`create_app`), never in a route's dependencies, so they apply to every
route, the fast lane's included. Adding an endpoint means one router file and
one entry in :data:`ROUTERS`: its metrics label, its body limit and whether it
needs a key (yes, unless it declares ``openapi_extra=OPEN``) follow from the
route itself.
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
from service import tracing
from service.auth import SECURITY, SECURITY_SCHEMES, APIKeyMiddleware, protected_paths
from service.config import Settings
from service.engine import InferenceEngine
from service.errors import install_error_handlers
from service.fastlane import FastLane, check_lane
from service.limits import BodySizeLimitMiddleware, upload_limits
from service.metrics import Metrics, MetricsMiddleware
from service.ratelimit import RateLimitMiddleware
from service.request_context import RequestContextMiddleware
from service.routers import ops, page, plate, predict, v2

logger = logging.getLogger("service")
# python-multipart logs every malformed body a client sends as a WARNING; the
# client already gets a 400, so that is not the operator's problem.
logging.getLogger("python_multipart").setLevel(logging.ERROR)

#: Every router of the API, in the order ``/docs`` lists them.
ROUTERS = (predict.router, plate.router, ops.router, v2.router, page.router)

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
    engine = await run_in_threadpool(InferenceEngine.load, settings, metrics)
    app.state.engine = engine
    if not settings.api_key_list():
        logger.warning("LPR_API_KEYS is not set: every route is open to anyone who can reach the service")
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
    protected = protected_paths(routes)
    keys = settings.api_key_list()
    # add_middleware wraps what is already there: innermost first.
    if settings.fast_lane:
        check_lane(routes)
        app.add_middleware(FastLane, state=app.state)
    app.add_middleware(BodySizeLimitMiddleware, limits=upload_limits(routes, settings))
    if settings.rate_limit is not None:
        app.add_middleware(
            RateLimitMiddleware, rate=settings.rate_limit, burst=settings.burst, protected=protected
        )
    if keys:
        app.add_middleware(APIKeyMiddleware, keys=keys, protected=protected)
    endpoints = {app.openapi_url, app.docs_url, app.redoc_url} | {route.path for route in routes}
    app.add_middleware(MetricsMiddleware, metrics=metrics, endpoints=endpoints)
    app.add_middleware(
        RequestContextMiddleware,
        access_log=settings.access_log,
        model_version=lambda: app.state.engine.metadata.model_version if app.state.engine else None,
    )
    traced = tracing.middleware()
    if traced is not None:
        middleware_class, options = traced
        app.add_middleware(middleware_class, **options)
        app.state.tracer_provider = options["tracer_provider"]
    app.openapi = partial(_openapi, app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema plus the API-key schemes, required on every route not declared open."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        # ErrorResponse is in the schema already: the upload routes document their errors with it.
        error = {"$ref": "#/components/schemas/ErrorResponse"}
        for operations in schema["paths"].values():
            for operation in operations.values():
                if operation.get("security") == []:
                    continue
                operation["security"] = SECURITY
                for status, meaning in (
                    ("401", "No API key, or a wrong one."),
                    ("429", "Over the rate limit."),
                ):
                    operation["responses"].setdefault(
                        status, {"description": meaning, "content": {"application/json": {"schema": error}}}
                    )
        app.openapi_schema = schema
    return app.openapi_schema


app = create_app()
