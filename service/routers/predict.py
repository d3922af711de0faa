"""``/predict`` and ``/predict/batch``: character crops in, classes out.

The hot path, in the order a request meets it: the (size-limited) body is read
once and split with python-multipart's parser (:mod:`service.multipart`); a
small crop is decoded and preprocessed right on the event loop (about a
quarter of a millisecond, cheaper than a hop to a thread), a large one in the
thread pool; inference goes to the dynamic batcher's thread
(:mod:`service.batching`). Answers are encoded to JSON straight from plain
dicts with orjson: pydantic models would cost more per batch than the
inference itself, and the standard library's encoder 4.6 ms per 64 answers.
The ``response_model``s still document the shape in ``/docs``, and the tests
validate real answers against them.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.batching import BatcherClosed
from service.dependencies import Runtime, RuntimeDep
from service.errors import APIError
from service.metrics import Metrics
from service.multipart import files_named, form_body, parse_form
from service.pipeline import Outcome, classify_files, open_upload, prepare, rank
from service.schemas import UPLOAD_ERROR_RESPONSES, BatchResponse, Prediction

router = APIRouter(tags=["predict"])

#: Uploads up to this many pixels are decoded on the event loop: a 512 x 512
#: crop takes well under a millisecond, and real crops are far smaller.
INLINE_PIXELS = 512 * 512

JSON = "application/json"


def _json(content: dict[str, Any]) -> bytes:
    return orjson.dumps(content)


def _count(metrics: Metrics, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, APIError):
            metrics.images_rejected.labels(outcome.code).inc()
        else:
            metrics.images_classified.labels(outcome["label"]).inc()


@router.post(
    "/predict",
    response_model=Prediction,
    responses=UPLOAD_ERROR_RESPONSES,
    openapi_extra=form_body(
        "file", many=False, description="One cropped character image (JPEG, PNG, WebP, BMP, TIFF, GIF)."
    ),
)
async def predict(request: Request, runtime: RuntimeDep) -> Response:
    """Classify one character crop.

    Any size and colour mode is accepted; EXIF orientation is honoured and only
    the first frame of an animation is used.
    """
    body = await request.body()
    return Response(await predict_body(runtime, body, request.headers.get("content-type")), media_type=JSON)


async def predict_body(runtime: Runtime, body: bytes, content_type: str | None) -> bytes:
    """One ``/predict`` request body to its JSON answer; every client mistake raises :class:`APIError`.

    Shared by the FastAPI route (which documents the endpoint) and
    :mod:`service.fastlane` (which usually serves it), so both answer alike.
    """
    classifier, settings, batcher = runtime.classifier, runtime.settings, runtime.batcher
    try:
        with batcher.arrival() as arrival:
            parts = parse_form(body, content_type, max_parts=8, max_part_bytes=settings.max_upload_bytes)
            upload = files_named(parts, "file", content_type)[0]
            image = open_upload(
                upload.data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels
            )
            spec = classifier.metadata.spec
            if image.width * image.height <= INLINE_PIXELS:
                tensor = prepare(image, spec)
            else:
                tensor = await run_in_threadpool(prepare, image, spec)
            probabilities = await arrival.classify(tensor)
    except BatcherClosed as exc:
        raise APIError("shutting_down", "the service is shutting down; retry on another replica") from exc
    except APIError as exc:
        runtime.metrics.images_rejected.labels(exc.code).inc()
        raise
    (answer,) = rank(classifier, probabilities[None])
    runtime.metrics.images_classified.labels(answer["label"]).inc()
    return _json({**answer, "model_version": classifier.metadata.model_version, "filename": upload.filename})


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses=UPLOAD_ERROR_RESPONSES,
    openapi_extra=form_body(
        "files", many=True, description="Character crops, the field repeated once per file."
    ),
)
async def predict_batch(request: Request, runtime: RuntimeDep) -> Response:
    """Classify many crops in one request.

    Results come back in upload order, one per file. A file that is not a usable
    image gets an error entry of its own (same codes as ``/predict``) and the
    others are still classified; the answer is 200 either way.
    """
    classifier, settings = runtime.classifier, runtime.settings
    content_type = request.headers.get("content-type")
    body = await request.body()

    def work() -> tuple[list[Outcome], bytes]:
        # Parsing 64 parts takes milliseconds: here, off the loop, with the rest of the batch.
        # A few parts beyond the limit are parsed so the refusal can say how many came.
        parts = parse_form(
            body,
            content_type,
            max_parts=settings.max_batch_files + 16,
            max_part_bytes=settings.max_upload_bytes,
        )
        files = files_named(parts, "files", content_type)
        if len(files) > settings.max_batch_files:
            raise APIError(
                "too_many_files",
                f"{len(files)} files sent; at most {settings.max_batch_files} are accepted per batch",
            )
        outcomes = classify_files(
            classifier,
            [upload.data for upload in files],
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
        answer = {
            "model_version": classifier.metadata.model_version,
            "count": len(outcomes),
            "classified": len(outcomes) - failed,
            "failed": failed,
            "results": results,
        }
        return outcomes, _json(answer)

    outcomes, encoded = await run_in_threadpool(work)
    _count(runtime.metrics, outcomes)
    return Response(encoded, media_type=JSON)
