"""One JSON error shape for every failure, and the one table of error statuses.

Clients branch on ``error.code`` (stable, machine-readable) and show
``error.message`` (for people). Starlette's and FastAPI's own errors (404, 405,
validation, broken multipart) are rewritten into the same shape so a client
never has to parse two formats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lpr.preprocessing import ImageError
from service import context

logger = logging.getLogger("service")

#: HTTP status of every error code the service emits. The image codes are
#: :class:`lpr.preprocessing.ImageError`'s (see :func:`image_errors`); the batch
#: endpoint reports the same codes per file inside a 200 answer.
STATUS_BY_CODE: dict[str, int] = {
    # the upload itself
    "empty": 422,
    "not_an_image": 415,
    "corrupt": 422,
    "too_many_pixels": 413,
    "file_too_large": 413,
    # the request around it
    "missing_field": 422,
    "invalid_field": 422,
    "validation_error": 422,
    "malformed_body": 400,
    "request_too_large": 413,
    "too_many_files": 413,
    "bad_request": 400,
    "not_found": 404,
    "method_not_allowed": 405,
    # who is asking, and how often
    "missing_api_key": 401,
    "invalid_api_key": 401,
    "rate_limited": 429,
    # the service
    "model_not_ready": 503,
    "shutting_down": 503,
    "internal_error": 500,
}

#: Codes for Starlette/FastAPI ``HTTPException``s, which only carry a status.
_CODE_BY_STATUS: dict[int, str] = {
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    503: "model_not_ready",
}


class APIError(Exception):
    """A failure the service reports to the client with a stable code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS_BY_CODE[code]


@contextmanager
def image_errors() -> Iterator[None]:
    """The core's error for an image it cannot use becomes the client's: the one mapping of it.

    :class:`~lpr.preprocessing.ImageError` (and :class:`lpr.errors.UnreadableImage`,
    which is one) carries a stable code; it becomes an :class:`APIError` of that
    code, whose status :data:`STATUS_BY_CODE` gives. Anything else (a model that
    fails) passes through, to be answered as the service's own failure.
    """
    try:
        yield
    except ImageError as exc:
        raise APIError(exc.code, exc.message) from exc


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error response, with the request's id.

    On the Open Inference Protocol routes the protocol's shape, ``{"error":
    "<message>"}``, with the code and id beside it.
    """
    rid = context.request_id.get()
    if context.v2_protocol.get():
        return {"error": message, "code": code, "request_id": rid}
    detail = {"code": code, "message": message, **extra}
    if rid is not None:
        detail["request_id"] = rid
    return {"error": detail}


def error_response(code: str, message: str, status: int | None = None, **extra: Any) -> JSONResponse:
    status = status if status is not None else STATUS_BY_CODE.get(code, 400)
    return JSONResponse(error_body(code, message, **extra), status_code=status)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return error_response(exc.code, exc.message, exc.status)


async def http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error")
    message = str(exc.detail)
    if code == "malformed_body":
        message = f"the request body is not valid multipart/form-data: {exc.detail}"
    elif code == "not_found":
        message = f"no endpoint at {request.url.path}; the API is listed at /docs"
    elif code == "method_not_allowed":
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another method'}"
    response = error_response(code, message, exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Say which multipart field is wrong, in words, instead of pydantic's raw error list."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    field = str(first.get("loc", ("body", "?"))[-1])
    content_type = request.headers.get("content-type", "none").split(";")[0]
    if first.get("type") == "missing":
        code = "missing_field"
        message = (
            f"the multipart/form-data field '{field}' is required and was not sent "
            f"(request content-type: {content_type})"
        )
    elif first.get("loc", ("",))[0] == "body":
        code = "invalid_field"
        message = f"the field '{field}' must be an uploaded file: {first.get('msg', 'invalid value')}"
    else:
        code = "validation_error"
        where = ".".join(map(str, first.get("loc", ())))
        message = f"invalid request: {first.get('msg', 'invalid value')} at {where}"
    details = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors
    ]
    return error_response(code, message, field=field, details=details)


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Last resort: a bug must still answer JSON, and must not leak a traceback."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response("internal_error", "the service failed to handle this request; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
