"""``/predict`` and ``/predict/batch``: character crops in, classes out.

Routes parse, call the engine, and shape the answer. The body is read once and
split with python-multipart's parser (:mod:`service.multipart`); answers are
encoded straight from plain dicts with orjson (pydantic models would cost more
per batch than the inference itself). The ``response_model``s document the
shape in ``/docs``, and the tests validate real answers against them.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.dependencies import EngineDep
from service.engine import InferenceEngine, Outcome
from service.errors import APIError
from service.multipart import Part, files_named, form_body, one_file, parse_form
from service.ratelimit import charge
from service.schemas import UPLOAD_ERROR_RESPONSES, BatchResponse, Prediction

router = APIRouter(tags=["predict"])

JSON = "application/json"


@router.post(
    "/predict",
    response_model=Prediction,
    responses=UPLOAD_ERROR_RESPONSES,
    openapi_extra=form_body(
        "file", many=False, description="One cropped character image (JPEG, PNG, WebP, BMP, TIFF, GIF)."
    ),
)
async def predict(request: Request, engine: EngineDep) -> Response:
    """Classify one character crop.

    Any size and colour mode is accepted; EXIF orientation is honoured and only
    the first frame of an animation is used.
    """
    body = await request.body()
    return Response(await predict_body(engine, body, request.headers.get("content-type")), media_type=JSON)


async def predict_body(engine: InferenceEngine, body: bytes, content_type: str | None) -> bytes:
    """One ``/predict`` request body to its JSON answer; every client mistake raises :class:`APIError`.

    The route above and the fast lane (:mod:`service.fastlane`) both answer through it.
    """
    upload = one_file(body, content_type, "file", max_part_bytes=engine.settings.max_upload_bytes)
    answer = await engine.predict(upload.data)
    return orjson.dumps(
        {**answer, "model_version": engine.metadata.model_version, "filename": upload.filename}
    )


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses=UPLOAD_ERROR_RESPONSES,
    openapi_extra=form_body(
        "files", many=True, description="Character crops, the field repeated once per file."
    ),
)
async def predict_batch(request: Request, engine: EngineDep) -> Response:
    """Classify many crops in one request.

    Results come back in upload order, one per file. A file that is not a usable
    image gets an error entry of its own (same codes as ``/predict``) and the
    others are still classified; the answer is 200 either way.
    """
    content_type = request.headers.get("content-type")
    body = await request.body()

    def work() -> tuple[int, bytes]:
        # One hop off the event loop for the whole batch: parsing 64 parts, the engine's
        # chunked classification and encoding the answer each take milliseconds.
        files = _batch_files(engine, body, content_type)
        outcomes = engine.classify_files([upload.data for upload in files])
        return len(files), orjson.dumps(_batch_answer(engine, files, outcomes))

    count, encoded = await run_in_threadpool(work)
    charge(request, count)
    return Response(encoded, media_type=JSON)


def _batch_answer(engine: InferenceEngine, files: list[Part], outcomes: list[Outcome]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for index, (outcome, upload) in enumerate(zip(outcomes, files, strict=True)):
        head = {"index": index, "status": "ok", "filename": upload.filename}
        if isinstance(outcome, APIError):
            head["status"] = "error"
            results.append({**head, "error": {"code": outcome.code, "message": outcome.message}})
        else:
            results.append({**head, **outcome})
    failed = sum(isinstance(outcome, APIError) for outcome in outcomes)
    return {
        "model_version": engine.metadata.model_version,
        "count": len(outcomes),
        "classified": len(outcomes) - failed,
        "failed": failed,
        "results": results,
    }


def _batch_files(engine: InferenceEngine, body: bytes, content_type: str | None) -> list[Part]:
    """The uploaded files of a batch; a few parts beyond the limit are parsed so the refusal can say
    how many came."""
    limit = engine.settings.max_batch_files
    parts = parse_form(
        body, content_type, max_parts=limit + 16, max_part_bytes=engine.settings.max_upload_bytes
    )
    files = files_named(parts, "files", content_type)
    if len(files) > limit:
        raise APIError("too_many_files", f"{len(files)} files sent; at most {limit} are accepted per batch")
    return files
