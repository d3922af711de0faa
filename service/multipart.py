"""Upload bodies parsed straight from bytes with python-multipart's parser.

Starlette's form parser spools every part into a ``SpooledTemporaryFile`` and
wraps it in an ``UploadFile``; for a 2 KB character crop that machinery costs
more than decoding the image. Measured with ``wrk`` on the 2-core machine, an
endpoint that only decodes and resizes the upload answered 1,140 requests/s
through ``UploadFile`` and 1,770 through this module. The body is read once
(its size is already bounded by :mod:`service.limits`); each part keeps at most
one byte over the per-file limit, enough for the pipeline to refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.errors import APIError


@dataclass(frozen=True, slots=True)
class Part:
    """One form field; ``filename`` is ``None`` for a plain text field."""

    name: str
    filename: str | None
    data: bytes


def _malformed(reason: str) -> APIError:
    return APIError("malformed_body", f"the request body is not valid multipart/form-data: {reason}")


class _PartCollector:
    """python-multipart's callbacks: each part's name, file name and bytes, the bytes kept up to ``keep``."""

    def __init__(self, max_parts: int, keep: int | None) -> None:
        self.max_parts = max_parts
        self.keep = keep
        self.parts: list[Part] = []
        self.chunks: list[bytes] = []
        self.kept = 0
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.disposition = b""
        self.finished = False

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.chunks.clear()
        self.kept = 0
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field.extend(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value.extend(data[start:end])

    def on_header_end(self) -> None:
        if bytes(self.header_field).lower() == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.keep is not None:
            end = min(end, start + self.keep - self.kept)
            if end <= start:
                return
        self.chunks.append(data[start:end])
        self.kept += end - start

    def on_part_end(self) -> None:
        if len(self.parts) >= self.max_parts:
            raise APIError("too_many_files", f"more than {self.max_parts} parts in one request")
        _, params = parse_options_header(self.disposition)
        name = params.get(b"name")
        if name is None:
            raise _malformed("a part has no Content-Disposition name")
        filename = params.get(b"filename")
        self.parts.append(
            Part(
                name.decode("utf-8", "replace"),
                None if filename is None else filename.decode("utf-8", "replace"),
                b"".join(self.chunks),
            )
        )

    def on_end(self) -> None:
        self.finished = True


def parse_form(
    body: bytes, content_type: str | None, *, max_parts: int, max_part_bytes: int | None = None
) -> list[Part]:
    """The fields of a ``multipart/form-data`` or urlencoded body, in order.

    Any other content type has no form fields, so the caller reports the
    missing field (and names the content type it got). More than ``max_parts``
    parts is refused before their contents are kept. A part is kept up to
    ``max_part_bytes + 1`` bytes: the file-size check still sees it is too large,
    and one oversized file in a batch costs no more memory than an allowed one.
    """
    kind, options = parse_options_header(content_type or "")
    if kind == b"application/x-www-form-urlencoded":
        # latin-1 both ways: any byte, escaped or not, maps to one character and back.
        fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        return [Part(name, None, value.encode("latin-1")) for name, value in fields[:max_parts]]
    if kind != b"multipart/form-data":
        return []
    boundary = options.get(b"boundary")
    if not boundary:
        raise _malformed("the content-type has no boundary")

    collector = _PartCollector(max_parts, None if max_part_bytes is None else max_part_bytes + 1)
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:  # also a boundary python-multipart refuses (over 256 bytes)
        raise _malformed(str(exc) or type(exc).__name__) from exc
    if not collector.finished and body.strip():
        # python-multipart accepts a body cut off mid-part without complaint.
        raise _malformed("the body ends before the closing boundary (truncated upload?)")
    return collector.parts


def files_named(parts: list[Part], field: str, content_type: str | None) -> list[Part]:
    """The uploaded files in ``field``; a missing field or a text value is the client's mistake."""
    found = [part for part in parts if part.name == field]
    if not found:
        sent = content_type.split(";")[0] if content_type else "none"
        others = sorted({part.name for part in parts})
        hint = f"; it sent {', '.join(repr(n) for n in others)}" if others else ""
        raise APIError(
            "missing_field",
            f"the multipart/form-data field '{field}' is required and was not sent "
            f"(request content-type: {sent}{hint})",
        )
    for part in found:
        if part.filename is None:
            raise APIError("invalid_field", f"the field '{field}' must be an uploaded file, not a text value")
    return found


def one_file(body: bytes, content_type: str | None, field: str, *, max_part_bytes: int) -> Part:
    """The one uploaded file of a single-file route (``/predict``, ``/read-plate``)."""
    parts = parse_form(body, content_type, max_parts=8, max_part_bytes=max_part_bytes)
    return files_named(parts, field, content_type)[0]


#: The OpenAPI extension that marks an upload route: ``one`` crop-sized file, ``many``, or
#: one whole ``photo``. The body-size limits (:func:`service.limits.upload_limits`) are derived
#: from it, so a new upload route is limited by declaring its body, with no list to edit.
UPLOAD_EXTENSION = "x-lpr-upload"


def form_body(field: str, *, many: bool, description: str, photo: bool = False) -> dict:
    """The OpenAPI ``requestBody`` of an upload route that reads its body with :func:`parse_form`.

    ``photo``: one file with the photo limits (``LPR_MAX_PHOTO_BYTES``), a phone's
    full-size picture, instead of a crop's.
    """
    if many and photo:
        raise ValueError("a photo route takes one file")
    file_schema = {"type": "string", "format": "binary", "description": description}
    schema = {"type": "array", "items": file_schema} if many else file_schema
    return {
        UPLOAD_EXTENSION: "many" if many else "photo" if photo else "one",
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": [field], "properties": {field: schema}}
                }
            },
        },
    }
