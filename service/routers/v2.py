"""The Open Inference Protocol V2 (KServe / Triton REST) routes, for clients that speak it.

Same engine, limits, keys and batching as the other routes; errors in the
protocol's shape (``{"error": "<message>"}``, see :func:`service.errors.error_body`).
The wire format is :mod:`service.oip`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

import service
from service import oip
from service.auth import OPEN
from service.dependencies import EngineDep
from service.engine import InferenceEngine, Outcome
from service.errors import APIError
from service.ratelimit import charge

router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])

_V2_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"application/json": {"example": {"error": "…"}}}}
    for status, description in {
        400: "Not a valid infer request, or not ready (health routes).",
        404: "No such model or version.",
        413: "Request over the size limit.",
        415: "An element is not an image.",
        422: "An element is empty or corrupt.",
        503: "The model is not loaded yet.",
    }.items()
}


def _model(engine: InferenceEngine, name: str, version: str | None) -> None:
    if name != oip.MODEL:
        raise APIError("not_found", f"unknown model '{name}'; this server serves '{oip.MODEL}'")
    if version is not None and version != engine.metadata.version:
        raise APIError(
            "not_found", f"model '{name}' has no version '{version}' (it has {engine.metadata.version})"
        )


@router.get("", responses=_V2_ERRORS)
async def server_metadata() -> dict[str, Any]:
    """Server metadata: name, version and protocol extensions."""
    return {"name": "nepali-lpr", "version": service.__version__, "extensions": ["binary_tensor_data"]}


@router.get("/health/live", openapi_extra=OPEN)
async def live() -> dict[str, bool]:
    """Liveness (200 while the process serves HTTP)."""
    return {"live": True}


@router.get("/health/ready", openapi_extra=OPEN, responses=_V2_ERRORS)
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 once the model is loaded and warmed up, 400 before (the protocol's 'false')."""
    engine = request.app.state.engine
    is_ready = engine is not None and engine.ready
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 400)


@router.get("/models/{model_name}", responses=_V2_ERRORS)
@router.get("/models/{model_name}/versions/{model_version}", responses=_V2_ERRORS)
async def model_metadata(
    engine: EngineDep, model_name: str, model_version: str | None = None
) -> dict[str, Any]:
    """The model's inputs, outputs and versions."""
    _model(engine, model_name, model_version)
    return oip.model_metadata(engine.metadata)


@router.get("/models/{model_name}/ready", openapi_extra=OPEN, responses=_V2_ERRORS)
@router.get("/models/{model_name}/versions/{model_version}/ready", openapi_extra=OPEN, responses=_V2_ERRORS)
async def model_ready(request: Request, model_name: str, model_version: str | None = None) -> JSONResponse:
    """Model readiness: 200 when it can infer, 400 before (or 404 for another model)."""
    engine = request.app.state.engine
    if engine is not None:
        _model(engine, model_name, model_version)
    is_ready = engine is not None and engine.ready
    return JSONResponse({"name": oip.MODEL, "ready": is_ready}, status_code=200 if is_ready else 400)


_INFER_BODY = {
    "x-lpr-upload": "many",
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {"inputs": {"type": "array"}},
                },
                "example": {
                    "id": "42",
                    "inputs": [
                        {"name": "image", "shape": [1], "datatype": "BYTES", "data": ["<base64 PNG>"]}
                    ],
                },
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


@router.post("/models/{model_name}/infer", openapi_extra=_INFER_BODY, responses=_V2_ERRORS)
@router.post(
    "/models/{model_name}/versions/{model_version}/infer", openapi_extra=_INFER_BODY, responses=_V2_ERRORS
)
async def infer(
    request: Request, engine: EngineDep, model_name: str, model_version: str | None = None
) -> Response:
    """Classify the images of input ``image`` (BYTES, one encoded image per element).

    JSON (base64 elements) or the binary tensor extension. The outputs are
    ``label``, ``confidence`` and ``probabilities``; the request ``id`` is echoed.
    An element that is not a usable image fails the request, naming the element.
    """
    _model(engine, model_name, model_version)
    body = await request.body()
    header_length = request.headers.get(oip.HEADER_LENGTH)

    def work() -> tuple[oip.InferRequest, list[Outcome]]:
        # One hop off the event loop for parsing and classifying, as for /predict/batch.
        parsed = oip.parse_infer(body, header_length, engine.settings.max_batch_files)
        return parsed, engine.classify_files(parsed.images)

    parsed, outcomes = await run_in_threadpool(work)
    charge(request, len(parsed.images))
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, APIError):
            raise APIError(outcome.code, f"input 'image' element {index}: {outcome.message}", outcome.status)
    answer = oip.infer_response(parsed, outcomes, engine.metadata)  # type: ignore[arg-type]
    return Response(orjson.dumps(answer), media_type="application/json")
