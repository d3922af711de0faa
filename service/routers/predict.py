"""``/predict`` and ``/predict/batch``: character crops in, classes out.

The answers are encoded to JSON in the worker thread, straight from plain
dicts, and returned as bytes: pydantic models would cost more per batch than
the inference itself. The ``response_model``s still document the shape in
``/docs``, and the tests validate real answers against them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from service.dependencies import RuntimeDep
from service.errors import APIError
from service.metrics import Metrics
from service.pipeline import Outcome, classify_files
from service.schemas import BatchResponse, ErrorResponse, Prediction

router = APIRouter(tags=["predict"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The body is not valid multipart/form-data.",
        413: "Upload over the size limit, or an image declaring too many pixels.",
        415: "The upload is not an image.",
        422: "Missing field, empty upload, or a truncated/corrupt image.",
        503: "The model is not loaded yet.",
    }.items()
}


def _json(content: dict[str, Any]) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def _count(metrics: Metrics, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, APIError):
            metrics.images_rejected.labels(outcome.code).inc()
        else:
            metrics.images_classified.labels(outcome["label"]).inc()


@router.post("/predict", response_model=Prediction, responses=_ERRORS)
async def predict(
    file: Annotated[
        UploadFile, File(description="One cropped character image (JPEG, PNG, WebP, BMP, TIFF, GIF).")
    ],
    runtime: RuntimeDep,
) -> Response:
    """Classify one character crop.

    Any size and colour mode is accepted; EXIF orientation is honoured and only
    the first frame of an animation is used.
    """
    classifier, settings = runtime.classifier, runtime.settings

    def work() -> tuple[Outcome, bytes]:
        (outcome,) = classify_files(
            classifier,
            [(file.file, file.filename)],
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
        )
        if isinstance(outcome, APIError):
            return outcome, b""
        body = {**outcome, "model_version": classifier.metadata.model_version, "filename": file.filename}
        return outcome, _json(body)

    outcome, body = await run_in_threadpool(work)
    _count(runtime.metrics, [outcome])
    if isinstance(outcome, APIError):
        raise outcome
    return Response(body, media_type="application/json")


@router.post("/predict/batch", response_model=BatchResponse, responses=_ERRORS)
async def predict_batch(
    files: Annotated[
        list[UploadFile], File(description="Character crops, the field repeated once per file.")
    ],
    runtime: RuntimeDep,
) -> Response:
    """Classify many crops in one request.

    Results come back in upload order, one per file. A file that is not a usable
    image gets an error entry of its own (same codes as ``/predict``) and the
    others are still classified; the answer is 200 either way.
    """
    classifier, settings = runtime.classifier, runtime.settings
    if len(files) > settings.max_batch_files:
        raise APIError(
            "too_many_files",
            f"{len(files)} files sent; at most {settings.max_batch_files} are accepted per batch",
        )

    def work() -> tuple[list[Outcome], bytes]:
        outcomes = classify_files(
            classifier,
            [(upload.file, upload.filename) for upload in files],
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
            chunk=settings.inference_chunk,
        )
        results: list[dict[str, Any]] = []
        for index, (outcome, upload) in enumerate(zip(outcomes, files, strict=True)):
            head = {"index": index, "status": "ok", "filename": upload.filename}
            if isinstance(outcome, APIError):
                head["status"] = "error"
                results.append({**head, "error": {"code": outcome.code, "message": outcome.message}})
            else:
                results.append({**head, **outcome})
        failed = sum(isinstance(outcome, APIError) for outcome in outcomes)
        body = {
            "model_version": classifier.metadata.model_version,
            "count": len(outcomes),
            "classified": len(outcomes) - failed,
            "failed": failed,
            "results": results,
        }
        return outcomes, _json(body)

    outcomes, body = await run_in_threadpool(work)
    _count(runtime.metrics, outcomes)
    return Response(body, media_type="application/json")
