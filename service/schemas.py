"""Response models: the API contract clients code against, and the examples in ``/docs``.

The examples are the served model's real answers (``service/examples.json``,
written from the running service by ``make examples`` and checked against it by
``tests/test_examples.py``), cut to a few entries where lists repeat.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The service's real answers, by example name (``predict``, ``batch``, ``read-plate``, ``error``).
EXAMPLES: dict[str, Any] = json.loads(Path(__file__).with_name("examples.json").read_text(encoding="utf-8"))


def _cut(answer: dict[str, Any], keep: int) -> dict[str, Any]:
    """An answer with its probabilities cut to the first ``keep`` classes."""
    return {**answer, "probabilities": answer["probabilities"][:keep]}


class ClassProbability(BaseModel):
    label: str = Field(description="ASCII class id: 0-9, ba or pa.", examples=["ba"])
    devanagari: str = Field(description="The class as printed on the plate.", examples=["बा"])
    probability: float = Field(ge=0.0, le=1.0, examples=[0.991119])


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable reason (docs/api.md lists every code).")
    message: str = Field(description="What is wrong, for people.")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["error"]]})

    error: ErrorDetail


_UNKNOWN = (
    "True when the top calibrated probability is below the model's threshold: the crop is likely "
    "none of the twelve symbols (another letter, a blank, a smudge) or unreadable. label stays the "
    "best guess; the threshold and temperature are in /model under 'calibration'."
)

_PREDICTION_EXAMPLE: dict[str, Any] = _cut(EXAMPLES["predict"], 3)


class Prediction(BaseModel):
    """What the model read in one character crop."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PREDICTION_EXAMPLE]})

    label: str = Field(description="ASCII id of the most probable class.", examples=["ba"])
    devanagari: str = Field(description="The most probable class in Devanagari.", examples=["बा"])
    confidence: float = Field(
        ge=0.0, le=1.0, description="Calibrated probability of the top class.", examples=[0.999879]
    )
    unknown: bool = Field(
        description=_UNKNOWN,
        examples=[False],
    )
    probabilities: list[ClassProbability] = Field(
        description="Every class with its calibrated probability, most probable first."
    )
    model_version: str = Field(description="Name and version of the model that answered.")
    filename: str | None = Field(None, description="The uploaded file's name, as the client sent it.")


class BatchItemOk(BaseModel):
    """A classified file of a batch: its position and name, then the prediction."""

    index: int = Field(description="Position of the file in the request, from 0.")
    status: Literal["ok"] = "ok"
    filename: str | None = Field(None, description="The uploaded file's name, as the client sent it.")
    label: str = Field(description="ASCII id of the most probable class.")
    devanagari: str = Field(description="The most probable class in Devanagari.")
    confidence: float = Field(ge=0.0, le=1.0, description="Calibrated probability of the top class.")
    unknown: bool = Field(description=_UNKNOWN)
    probabilities: list[ClassProbability] = Field(description="Every class, most probable first.")


class BatchItemError(BaseModel):
    """A file of a batch that could not be classified, and why (same codes as ``/predict``)."""

    index: int = Field(description="Position of the file in the request, from 0.")
    status: Literal["error"] = "error"
    filename: str | None = None
    error: ErrorDetail


BatchItem = Annotated[BatchItemOk | BatchItemError, Field(discriminator="status")]


class BatchResponse(BaseModel):
    """One entry per uploaded file, in upload order; a bad file does not spoil the others."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **EXAMPLES["batch"],
                    "results": [
                        _cut(r, 1) if r["status"] == "ok" else r for r in EXAMPLES["batch"]["results"]
                    ],
                }
            ]
        }
    )

    model_version: str
    count: int = Field(description="Number of files received.")
    classified: int = Field(description="Files classified successfully.")
    failed: int = Field(description="Files answered with an error entry.")
    results: list[BatchItem]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: str | None = None
    detail: str | None = None


class ModelInfo(BaseModel):
    """The shipped metadata file, verbatim, plus what this process loaded."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "name": EXAMPLES["predict"]["model_version"].split()[0],
                    "version": EXAMPLES["predict"]["model_version"].split()[1],
                    "model_version": EXAMPLES["predict"]["model_version"],
                    "labels": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "ba", "pa"],
                    "input": {"name": "image", "shape": [None, 32, 32, 1], "dtype": "float32"},
                    "test_metrics": {"accuracy": 0.9826, "macro_f1": 0.978, "n": 403},
                    "onnx": {"file": "model.onnx", "sha256": "…", "opset": 17},
                }
            ]
        },
    )

    name: str
    version: str
    model_version: str
    labels: list[str]
    devanagari: list[str] | None = None
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    preprocessing: dict[str, Any]
    test_metrics: dict[str, Any] | None = None
    dataset: dict[str, Any] | None = None
    onnx: dict[str, Any] | None = None
    runtime: dict[str, Any] = Field(
        description="What this process loaded and runs: ONNX Runtime, threads, the file's SHA-256, pid, "
        "ready, batching, and runners (one per loaded model: role, name, version, calls, images, active)."
    )


#: The documented error answers of every upload route (``/predict``, ``/predict/batch``, ``/read-plate``).
UPLOAD_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The body is not valid multipart/form-data.",
        413: "Upload over the size limit, or an image declaring too many pixels.",
        415: "The upload is not an image.",
        422: "Missing field, empty upload, or a truncated/corrupt image.",
        503: "The model is not loaded yet.",
    }.items()
}
