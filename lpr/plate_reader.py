"""The one plate reader: a plate image to its characters, rows and text.

Segmentation (:mod:`lpr.segmentation`), every character in ONE batched
inference, the plate format (:mod:`lpr.plate_format`) and calibrated
confidences (:mod:`lpr.confidence`). ``POST /read-plate`` answers with
:meth:`PlateReading.answer`, and ``lpr-train plates`` scores
:attr:`PlateReading.labels`, so the evaluation measures exactly what the
service says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lpr.confidence import rank
from lpr.model import ModelMetadata
from lpr.plate_format import constrain
from lpr.segmentation import Segmentation, batch_inputs, segment

#: Runs a preprocessed batch through the model: uncalibrated probabilities, one row per image.
Classify = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PlateReading:
    """What was read on one plate: the segmentation, the model's raw output and the characters."""

    segmentation: Segmentation
    #: The model's uncalibrated probabilities, one row per character in reading order.
    probabilities: np.ndarray
    #: Per row, per character: box, label, devanagari, confidence, unknown (the API's shape).
    rows: list[list[dict[str, Any]]]

    @property
    def labels(self) -> list[list[str]]:
        return [[c["label"] for c in row] for row in self.rows]

    def answer(self, model_version: str, filename: str | None = None) -> dict[str, Any]:
        """The ``/read-plate`` answer, as plain dicts (encoded without pydantic on the hot path)."""
        rows = [
            {
                "text": "".join(c["devanagari"] for c in row),
                "labels": [c["label"] for c in row],
                "characters": row,
            }
            for row in self.rows
        ]
        return {
            "model_version": model_version,
            "filename": filename,
            "image": {"width": self.segmentation.width, "height": self.segmentation.height},
            "text": " ".join(row["text"] for row in rows),
            "rows": rows,
            "count": self.segmentation.count,
            "reason": self.segmentation.reason,
        }


def decode(
    segmentation: Segmentation, probabilities: np.ndarray, meta: ModelMetadata, *, use_format: bool = True
) -> list[list[dict[str, Any]]]:
    """The characters of each row, with the plate format applied (or not, for comparison).

    ``confidence`` is the model's own calibrated belief in the chosen label, not
    renormalised over what the format allows (that would make the zone letter
    always 1.0), so a letter the format imposed on a doubtful mark shows a low
    confidence; ``unknown`` is set when the model's best guess or the chosen
    label is under the threshold.
    """
    if not segmentation.count:
        return []
    plain = rank(probabilities, meta)
    constrained = constrain([len(row) for row in segmentation.rows], probabilities) if use_format else None
    chosen = rank(constrained, meta) if constrained is not None else plain
    rows: list[list[dict[str, Any]]] = []
    start = 0
    for row in segmentation.rows:
        characters = []
        for glyph, answer, own in zip(row, chosen[start:], plain[start:], strict=False):
            x, y, w, h = glyph.box
            label = answer["label"]
            confidence = next(c["probability"] for c in own["probabilities"] if c["label"] == label)
            characters.append(
                {
                    "box": {"x": x, "y": y, "width": w, "height": h},
                    "label": label,
                    "devanagari": answer["devanagari"],
                    "confidence": confidence,
                    "unknown": bool(own["unknown"] or confidence < meta.threshold),
                }
            )
        start += len(row)
        rows.append(characters)
    return rows


def read_plate(image: Image.Image, classify: Classify, meta: ModelMetadata) -> PlateReading:
    """Segment a decoded plate image, classify every character in one call, apply the format."""
    segmentation = segment(image)
    if segmentation.count:
        probabilities = classify(batch_inputs(segmentation, meta.spec))
    else:
        probabilities = np.zeros((0, len(meta.labels)), dtype=np.float32)
    return PlateReading(segmentation, probabilities, decode(segmentation, probabilities, meta))
