"""Operational endpoints: liveness, readiness, model card, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.auth import OPEN
from service.dependencies import EngineDep, MetricsDep
from service.metrics import CONTENT_TYPE
from service.schemas import ErrorResponse, Health, ModelInfo, Readiness

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, openapi_extra=OPEN)
async def health() -> Health:
    """Liveness: the process answers HTTP. Says nothing about the model, on purpose,
    so an orchestrator does not restart a pod that is merely still loading."""
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    response_model_exclude_none=True,
    openapi_extra=OPEN,
    responses={503: {"model": Readiness, "description": "Model not loaded or not warmed up yet."}},
)
async def ready(request: Request) -> Readiness | JSONResponse:
    """Readiness: the model is loaded and a warm-up inference has run, so traffic may be sent."""
    engine = request.app.state.engine
    if engine is not None and engine.ready:
        return Readiness(status="ready", model_version=engine.metadata.model_version)
    detail = getattr(request.app.state, "load_error", None) or "the model is still loading"
    return JSONResponse(
        Readiness(status="not_ready", detail=detail).model_dump(exclude_none=True), status_code=503
    )


@router.get("/model", response_model=ModelInfo, responses={503: {"model": ErrorResponse}})
async def model_info(engine: EngineDep) -> ModelInfo:
    """The shipped metadata (labels, input shape, version, hashes, test metrics) and runtime facts."""
    return ModelInfo.model_validate(engine.info())


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}}, openapi_extra=OPEN
)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus exposition of request, image and inference metrics."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
