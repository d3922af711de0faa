"""``POST /read-plate``: a cropped plate in, its characters in reading order out.

The upload goes through the same checks as ``/predict`` (byte limit, pixel
limit from the header, decode errors as the same 4xx codes). Then, in one
worker thread: segmentation (:mod:`training.segmentation`), every character
in ONE batched inference, the plate format (:mod:`training.plate_format`), and
:func:`service.pipeline.rank` for calibrated confidences and the ``unknown``
flag. ``lpr-train plates`` measures exactly this path on synthetic plates.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.dependencies import RuntimeDep
from service.errors import APIError
from service.model import Classifier
from service.multipart import files_named, form_body, parse_form
from service.pipeline import open_upload, rank
from service.plate_schemas import PlateReading
from service.schemas import UPLOAD_ERROR_RESPONSES
from training.plate_format import constrain
from training.preprocessing import ImageError, load_image
from training.segmentation import batch_inputs, segment

logger = logging.getLogger("service.plate")

router = APIRouter(tags=["plate"])


def read_plate(classifier: Classifier, data: bytes, *, max_bytes: int, max_pixels: int) -> dict[str, Any]:
    """A plate image's bytes to the ``PlateReading`` shape, as plain dicts.

    Bad input raises :class:`APIError` with the same codes as ``/predict``.
    """
    image = open_upload(data, max_bytes=max_bytes, max_pixels=max_pixels)
    try:
        image = load_image(image)
        segmentation = segment(image)
        batch = batch_inputs(segmentation, classifier.metadata.spec)
    except ImageError as exc:
        raise APIError.from_image_error(exc) from exc
    except Exception as exc:  # Pillow/NumPy/SciPy raise many types on hostile input: still the input's fault
        logger.warning("plate segmentation failed (%r)", exc, exc_info=True)
        raise APIError("corrupt", f"the image could not be processed: {exc}") from exc

    rows: list[dict[str, Any]] = []
    if segmentation.count:
        probabilities = classifier.classify(batch)
        raw = rank(classifier, probabilities)
        constrained = constrain([len(row) for row in segmentation.rows], probabilities)
        answers = rank(classifier, constrained) if constrained is not None else raw
        start = 0
        for row in segmentation.rows:
            characters = []
            for glyph, answer, plain in zip(row, answers[start:], raw[start:], strict=False):
                x, y, w, h = glyph.box
                confidence = next(
                    c["probability"] for c in plain["probabilities"] if c["label"] == answer["label"]
                )
                characters.append(
                    {
                        "box": {"x": x, "y": y, "width": w, "height": h},
                        "label": answer["label"],
                        "devanagari": answer["devanagari"],
                        # The model's own calibrated belief in the chosen label, not renormalised over
                        # what the format allows (that would make the zone letter always 1.0): a letter
                        # the format imposed on a doubtful mark shows as a low confidence.
                        "confidence": confidence,
                        # Doubtful whichever label is shown: the model's best guess was below the
                        # threshold, or the label the format chose is.
                        "unknown": bool(plain["unknown"] or confidence < classifier.metadata.threshold),
                    }
                )
            start += len(row)
            rows.append(
                {
                    "text": "".join(c["devanagari"] for c in characters),
                    "labels": [c["label"] for c in characters],
                    "characters": characters,
                }
            )
    return {
        "model_version": classifier.metadata.model_version,
        "filename": None,
        "image": {"width": segmentation.width, "height": segmentation.height},
        "text": " ".join(row["text"] for row in rows),
        "rows": rows,
        "count": segmentation.count,
        "reason": segmentation.reason,
    }


@router.post(
    "/read-plate",
    response_model=PlateReading,
    responses=UPLOAD_ERROR_RESPONSES,
    openapi_extra=form_body(
        "file", many=False, description="One cropped plate image: one or two rows, white paint on red."
    ),
)
async def read_plate_route(request: Request, runtime: RuntimeDep) -> Response:
    """Read a whole plate: the characters' boxes, classes and text, row by row.

    A plate where no character is found is still a 200, with ``count`` 0 and
    a ``reason``. Errors use the same codes and statuses as ``/predict``.
    """
    classifier, settings = runtime.classifier, runtime.settings
    content_type = request.headers.get("content-type")
    try:
        parts = parse_form(
            await request.body(), content_type, max_parts=8, max_part_bytes=settings.max_upload_bytes
        )
        upload = files_named(parts, "file", content_type)[0]
        body = await run_in_threadpool(
            read_plate,
            classifier,
            upload.data,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
        )
    except APIError as exc:
        runtime.metrics.images_rejected.labels(exc.code).inc()
        raise
    body["filename"] = upload.filename
    return Response(orjson.dumps(body), media_type="application/json")
