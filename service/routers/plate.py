"""``POST /read-plate``: a photo or a cropped plate in, each plate's characters in reading order out.

The upload meets the checks of ``/predict`` with the photo limits (``LPR_MAX_PHOTO_BYTES``,
``LPR_MAX_PHOTO_PIXELS`` from the header; decode errors as the same 4xx codes); the engine then reads it
with the one photo reader (:mod:`lpr.photo_reader`, each plate through
:mod:`lpr.plate_reader`, which ``lpr-train plates`` also measures), and
:func:`service.plate_schemas.plate_answer` writes the answer.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from service.dependencies import EngineDep
from service.multipart import form_body, one_file
from service.plate_schemas import PlateReading
from service.schemas import UPLOAD_ERROR_RESPONSES

router = APIRouter(tags=["plate"])


@router.post(
    "/read-plate",
    response_model=PlateReading,
    responses=UPLOAD_ERROR_RESPONSES,
    openapi_extra=form_body(
        "file",
        many=False,
        photo=True,
        description="One photo with plates in it, or one cropped plate: one or two rows, white paint on red.",
    ),
)
async def read_plate(request: Request, engine: EngineDep) -> Response:
    """Read a whole plate: the characters' boxes, classes and text, row by row.

    A plate where no character is found is still a 200, with ``count`` 0 and
    a ``reason``. Errors use the same codes and statuses as ``/predict``.
    """
    upload = one_file(
        await request.body(),
        request.headers.get("content-type"),
        "file",
        max_part_bytes=engine.settings.max_photo_bytes,
    )
    answer = await engine.read_plate(upload.data, upload.filename)
    return Response(orjson.dumps(answer), media_type="application/json")
