"""Where the plates are in a photo: the detector's one input transform and one decoder.

The detector is a small fully convolutional network (``training/fitting/detector.py``)
that sees the photo letterboxed to a square of :attr:`DetectorSpec.side` px
and answers, on a grid of cells :attr:`DetectorSpec.stride` px wide, a plate
centre heatmap and each centre's offset and size (CenterNet's head). Training
and the service both go through :func:`letterbox` and :func:`decode`, so
what is measured offline is what is served.

A photo is decoded for the detector at reduced scale where the file allows it
(JPEG's DCT scaling through Pillow's ``draft``): the detector needs a few
hundred pixels, and decoding a 12 MP photo at full size costs more than the
network. Only the plate's own region is then read at full resolution.

NumPy, Pillow and ONNX Runtime only: the service imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lpr.model import ModelLoadError, checked_session, read_metadata

#: The repository name of the plate detector.
DETECTOR_MODEL = "plate-detector"
#: Channels of the head, per cell: centre logit, x and y offset in the cell, log width and height.
HEAD = ("centre", "dx", "dy", "log_width", "log_height")
#: Grey that pads the letterbox: the mean of nothing in particular, never plate red.
PAD_VALUE = 114
#: Lowest heatmap peak kept as a plate, and IoU above which the weaker of two boxes is dropped.
MIN_SCORE = 0.3
NMS_IOU = 0.4


@dataclass(frozen=True)
class DetectorSpec:
    """The detector's input square and output grid: recorded in its metadata, read back at load."""

    side: int = 256
    stride: int = 16

    @property
    def grid(self) -> int:
        return self.side // self.stride

    def to_dict(self) -> dict[str, int]:
        return {"side": self.side, "stride": self.stride}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorSpec:
        return cls(side=int(data["side"]), stride=int(data["stride"]))


@dataclass(frozen=True)
class Detection:
    """One plate found: its box in the upright image's pixels and the heatmap's peak."""

    x: float
    y: float
    width: float
    height: float
    score: float


def reduced(image: Image.Image, side: int) -> Image.Image:
    """Ask a JPEG to decode at the smallest DCT scale that still covers ``side`` px (no-op otherwise).

    ``draft`` must run before the pixels are loaded; it only ever scales by 1/2,
    1/4 or 1/8, never below the requested size, so the letterbox that follows
    still downsamples.
    """
    if image.format == "JPEG" and max(image.size) > 2 * side:
        image.draft("RGB", (side, side))
    return image


def letterbox(image: Image.Image, spec: DetectorSpec) -> tuple[np.ndarray, float]:
    """The detector's input: RGB, longest side scaled to ``spec.side``, padded grey at right and bottom.

    Returns the float32 HWC array in [0, 1] and the scale from the image's
    pixels to the square's (a box in the square divided by it is in the image).
    """
    rgb = image.convert("RGB")
    scale = spec.side / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    small = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    square = np.full((spec.side, spec.side, 3), PAD_VALUE, dtype=np.uint8)
    square[: size[1], : size[0]] = np.asarray(small)
    return square.astype(np.float32) / 255.0, scale


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def iou(a: Detection, b: Detection) -> float:
    ix = max(0.0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def decode(
    head: np.ndarray, spec: DetectorSpec, scale: float = 1.0, min_score: float = MIN_SCORE
) -> list[Detection]:
    """One image's head output (grid × grid × 5) to plates, best first, in the image's pixels.

    A plate is a cell whose centre score is a local maximum of its 3 × 3
    neighbourhood and at least ``min_score``; overlapping boxes keep the
    stronger (IoU above :data:`NMS_IOU`).
    """
    heat = _sigmoid(head[..., 0])
    padded = np.pad(heat, 1, constant_values=-1.0)
    grid = heat.shape[0]
    neighbours = np.stack(
        [padded[dy : dy + grid, dx : dx + heat.shape[1]] for dy in range(3) for dx in range(3)]
    )
    peaks = np.argwhere((heat >= neighbours.max(axis=0)) & (heat >= min_score))
    found: list[Detection] = []
    for row, col in sorted(peaks.tolist(), key=lambda rc: -heat[rc[0], rc[1]]):
        dx, dy, log_w, log_h = head[row, col, 1:5]
        cx = (col + float(np.clip(dx, 0.0, 1.0))) * spec.stride
        cy = (row + float(np.clip(dy, 0.0, 1.0))) * spec.stride
        w = math.exp(float(np.clip(log_w, -6.0, 0.5))) * spec.side
        h = math.exp(float(np.clip(log_h, -6.0, 0.5))) * spec.side
        box = Detection(
            (cx - w / 2) / scale, (cy - h / 2) / scale, w / scale, h / scale, float(heat[row, col])
        )
        if all(iou(box, kept) <= NMS_IOU for kept in found):
            found.append(box)
    return found


@dataclass(frozen=True)
class DetectorMetadata:
    """The parts of the detector's ``model.json`` that inference relies on."""

    raw: dict[str, Any]
    name: str
    version: str
    spec: DetectorSpec
    min_score: float

    @property
    def model_version(self) -> str:
        return f"{self.name} {self.version}"

    @classmethod
    def load(cls, path: Path) -> DetectorMetadata:
        return cls.from_dict(read_metadata(path), where=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "metadata") -> DetectorMetadata:
        try:
            channels = list(raw["output"]["channels"])
            meta = cls(
                raw=raw,
                name=raw["name"],
                version=raw["version"],
                spec=DetectorSpec.from_dict(raw["input"]),
                min_score=float(raw.get("min_score", MIN_SCORE)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"cannot read detector metadata {where}: {exc}") from exc
        if channels != list(HEAD):
            raise ModelLoadError(f"{where}: detector head {channels} is not {list(HEAD)}")
        return meta


class Detector:
    """An ONNX plate detector and its metadata; one per process, thread-safe like its session."""

    def __init__(self, onnx_path: Path, metadata_path: Path, intra_op_threads: int = 1) -> None:
        self.metadata = DetectorMetadata.load(metadata_path)
        self.session = checked_session(onnx_path, self.metadata.raw, intra_op_threads)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def spec(self) -> DetectorSpec:
        return self.metadata.spec

    def heads(self, batch: np.ndarray) -> np.ndarray:
        """Raw head outputs for a batch of letterboxed squares."""
        return self.session.run(None, {self.input_name: batch})[0]

    def warm_up(self) -> None:
        """One run, so the first photo does not pay for ONNX Runtime's lazy set-up."""
        self.heads(np.zeros((1, self.spec.side, self.spec.side, 3), dtype=np.float32))

    def detect(
        self,
        image: Image.Image,
        min_score: float | None = None,
        *,
        heads: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> list[Detection]:
        """The plates in an (upright, possibly draft-decoded) image, best first, in its pixels.

        ``min_score`` overrides the metadata's floor (training chooses the floor with it);
        ``heads`` runs the network in place of :meth:`heads` (the service's runner, which
        times and counts every call).
        """
        square, scale = letterbox(image, self.spec)
        floor = self.metadata.min_score if min_score is None else min_score
        return decode((heads or self.heads)(square[None])[0], self.spec, scale, floor)
