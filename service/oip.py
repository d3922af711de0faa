"""The Open Inference Protocol (KServe V2 / Triton REST) as this service speaks it.

One model, ``lpr``. Its input ``image`` is ``BYTES``, shape ``[N]``: one
encoded image file (any format ``/predict`` takes) per element. In plain JSON
each element is a base64 string; with the binary tensor extension (what
``tritonclient`` sends by default: an ``Inference-Header-Content-Length``
header, the JSON header, then the raw tensors) each element is its bytes
prefixed by their length as a 4-byte little-endian integer. The outputs are
``label`` (``BYTES [N]``), ``confidence`` (``FP32 [N]``) and
``probabilities`` (``FP32 [N, 12]``, in the metadata's label order), always
answered as JSON (a client asking for binary outputs reads JSON just the same).
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from lpr.model import ModelMetadata
from service.errors import APIError

MODEL = "lpr"
INPUT = "image"
OUTPUTS = ("label", "confidence", "probabilities")
HEADER_LENGTH = "inference-header-content-length"


def _bad(message: str) -> APIError:
    return APIError("bad_request", message, 400)


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    images: list[bytes]
    outputs: tuple[str, ...]


def _split_bytes(raw: bytes) -> list[bytes]:
    """A binary BYTES tensor: each element a 4-byte little-endian length, then that many bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise _bad("the binary 'image' tensor ends inside an element's length")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise _bad("the binary 'image' tensor ends inside an element")
        elements.append(raw[offset : offset + size])
        offset += size
    return elements


def parse_infer(body: bytes, header_length: str | None, max_images: int) -> InferRequest:
    """An infer request body (JSON, or JSON plus binary tensors) to its images; 400 on anything off."""
    binary = b""
    if header_length is not None:
        try:
            cut = int(header_length)
        except ValueError as exc:
            raise _bad(f"Inference-Header-Content-Length is not a number: {header_length!r}") from exc
        if not 0 < cut <= len(body):
            raise _bad(f"Inference-Header-Content-Length {cut} does not fit a body of {len(body)} bytes")
        body, binary = body[:cut], body[cut:]
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"the request is not JSON: {exc}") from exc
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise _bad("the request must be a JSON object with an 'inputs' list")
    inputs = [i for i in request["inputs"] if isinstance(i, dict) and i.get("name") == INPUT]
    if len(inputs) != 1 or len(request["inputs"]) != 1:
        raise _bad(f"the model takes exactly one input, '{INPUT}' (BYTES, one encoded image per element)")
    (tensor,) = inputs
    if tensor.get("datatype") != "BYTES":
        raise _bad(f"input '{INPUT}' must have datatype BYTES, not {tensor.get('datatype')!r}")
    parameters = tensor.get("parameters") or {}
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if not isinstance(size, int) or size != len(binary):
            raise _bad(f"binary_data_size {size!r} does not match the {len(binary)} binary bytes sent")
        images = _split_bytes(binary)
    else:
        data = tensor.get("data")
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise _bad(f"input '{INPUT}' data must be a list of base64 strings")
        try:
            images = [base64.b64decode(x, validate=True) for x in data]
        except (binascii.Error, ValueError) as exc:
            raise _bad(f"input '{INPUT}' holds an element that is not base64: {exc}") from exc
    shape = tensor.get("shape")
    if shape != [len(images)]:
        raise _bad(f"input '{INPUT}' has shape {shape!r} but holds {len(images)} elements")
    if not images:
        raise _bad(f"input '{INPUT}' holds no image")
    if len(images) > max_images:
        raise APIError("too_many_files", f"{len(images)} images sent; at most {max_images} per request")
    wanted = request.get("outputs")
    names = OUTPUTS
    if isinstance(wanted, list):
        names = tuple(o.get("name") for o in wanted if isinstance(o, dict))
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise _bad(f"unknown output(s) {unknown}; the model has {list(OUTPUTS)}")
    rid = request.get("id")
    return InferRequest(str(rid) if rid is not None else None, images, names or OUTPUTS)


def infer_response(
    request: InferRequest, answers: list[dict[str, Any]], meta: ModelMetadata
) -> dict[str, Any]:
    """The protocol's answer for ranked answers (:func:`lpr.confidence.rank` rows), one per image."""
    n = len(answers)
    index = {label: k for k, label in enumerate(meta.labels)}
    tensors = {
        "label": {"datatype": "BYTES", "shape": [n], "data": [a["label"] for a in answers]},
        "confidence": {"datatype": "FP32", "shape": [n], "data": [a["confidence"] for a in answers]},
        "probabilities": {
            "datatype": "FP32",
            "shape": [n, len(meta.labels)],
            "data": [p for a in answers for p in _in_label_order(a, index)],
        },
    }
    response: dict[str, Any] = {
        "model_name": MODEL,
        "model_version": meta.version,
        "outputs": [{"name": name, **tensors[name]} for name in request.outputs],
    }
    if request.id is not None:
        response["id"] = request.id
    return response


def _in_label_order(answer: dict[str, Any], index: dict[str, int]) -> list[float]:
    row = [0.0] * len(index)
    for entry in answer["probabilities"]:
        row[index[entry["label"]]] = entry["probability"]
    return row


def model_metadata(meta: ModelMetadata) -> dict[str, Any]:
    return {
        "name": MODEL,
        "versions": [meta.version],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "confidence", "datatype": "FP32", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(meta.labels)]},
        ],
        "parameters": {"labels": list(meta.labels), "model_version": meta.model_version},
    }
