"""Where the characters are on a plate, and what each one is: the character finder's input and decoder.

Cutting a plate into characters by connected components breaks on real
paint: neighbours that touch become one glyph, a worn stroke becomes two, a
bolt or the dot after the zone becomes a character. The finder is a small
fully convolutional network (``training/fitting/char_finder.py``) that sees
the plate letterboxed to :attr:`FinderSpec.width` ×
:attr:`FinderSpec.height` grey pixels and answers, per cell of
:attr:`FinderSpec.stride` px, a character-centre heatmap, each centre's offset
and size (CenterNet's head, as the plate detector's) and the probabilities of
what is painted there: the twelve classes and ``?``, any other letter.

Training and the service both go through :func:`letterbox` and :func:`decode`,
so what is measured offline is what is served. NumPy, Pillow and ONNX Runtime
only: the service imports this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lpr.labels import DEVANAGARI, LABELS
from lpr.model import CalibratedBars, ModelLoadError, checked_session, optional_float, read_metadata

#: The repository name of the character finder.
FINDER_MODEL = "char-finder"
#: What the finder's class channels name: the twelve, then any letter outside them.
OTHER = "?"
FINDER_LABELS: tuple[str, ...] = (*LABELS, OTHER)
#: Channels of the head, per cell, before the class logits.
BOX_HEAD = ("centre", "dx", "dy", "log_width", "log_height")
#: Who may name the characters the finder found (:attr:`FinderMetadata.naming`).
NAMINGS = ("finder", "classifier")
#: Grey that pads the letterbox (the plate detector's too).
PAD_VALUE = 114
#: Heatmap peaks below this are never characters; IoU above which the weaker of two is dropped.
FLOOR = 0.1
NMS_IOU = 0.35


@dataclass(frozen=True)
class FinderSpec:
    """The finder's input and output grid: recorded in its metadata, read back at load."""

    height: int = 128
    width: int = 256
    stride: int = 4
    labels: tuple[str, ...] = FINDER_LABELS

    @property
    def grid(self) -> tuple[int, int]:
        return self.height // self.stride, self.width // self.stride

    @property
    def channels(self) -> int:
        return len(BOX_HEAD) + len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "width": self.width,
            "stride": self.stride,
            "labels": list(self.labels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinderSpec:
        return cls(int(data["height"]), int(data["width"]), int(data["stride"]), tuple(data["labels"]))


@dataclass(frozen=True)
class Found:
    """One character found: its box in the image's pixels, the heatmap's peak, its class probabilities."""

    x: float
    y: float
    width: float
    height: float
    score: float
    probabilities: np.ndarray  # over FinderSpec.labels, uncalibrated

    @property
    def centre_y(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Letterboxed:
    """An image as the finder sees it, and the way back to the image's pixels."""

    pixels: np.ndarray  # (height, width, 1) float32 in [0, 1]
    scale: float  # finder px per image px
    offset: tuple[float, float]  # where the image's top-left corner sits in the finder's input

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.offset[0]) / self.scale, (y - self.offset[1]) / self.scale


def letterbox(image: Image.Image, spec: FinderSpec) -> Letterboxed:
    """The finder's input: grey, scaled to fit, centred on :data:`PAD_VALUE` grey."""
    grey = image.convert("L")
    scale = min(spec.width / grey.width, spec.height / grey.height)
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    small = grey.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    canvas = np.full((spec.height, spec.width), PAD_VALUE, dtype=np.uint8)
    ox, oy = (spec.width - size[0]) // 2, (spec.height - size[1]) // 2
    canvas[oy : oy + size[1], ox : ox + size[0]] = np.asarray(small)
    return Letterboxed(canvas[..., None].astype(np.float32) / 255.0, scale, (float(ox), float(oy)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _iou(a: Found, b: Found) -> float:
    ix = max(0.0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def decode(head: np.ndarray, spec: FinderSpec, boxed: Letterboxed, floor: float = FLOOR) -> list[Found]:
    """One plate's head output to the characters found, strongest first, in the image's pixels.

    A character is a cell whose centre score is a local maximum of its 3 × 3
    neighbourhood and at least ``floor``; overlapping boxes keep the stronger.
    """
    heat = _sigmoid(head[..., 0])
    rows, cols = heat.shape
    padded = np.pad(heat, 1, constant_values=-1.0)
    neighbours = np.stack([padded[dy : dy + rows, dx : dx + cols] for dy in range(3) for dx in range(3)])
    peaks = np.argwhere((heat >= neighbours.max(axis=0)) & (heat >= floor))
    found: list[Found] = []
    for row, col in sorted(peaks.tolist(), key=lambda rc: -heat[rc[0], rc[1]]):
        dx, dy, log_w, log_h = (float(v) for v in head[row, col, 1:5])
        cx = (col + min(max(dx, 0.0), 1.0)) * spec.stride
        cy = (row + min(max(dy, 0.0), 1.0)) * spec.stride
        w = math.exp(min(max(log_w, -3.0), 5.0)) * spec.stride
        h = math.exp(min(max(log_h, -3.0), 5.0)) * spec.stride
        x0, y0 = boxed.to_image(cx - w / 2, cy - h / 2)
        candidate = Found(
            x0, y0, w / boxed.scale, h / boxed.scale, float(heat[row, col]), _softmax(head[row, col, 5:])
        )
        if all(_iou(candidate, kept) <= NMS_IOU for kept in found):
            found.append(candidate)
    return found


@dataclass(frozen=True)
class FinderMetadata(CalibratedBars):
    """The parts of the finder's ``model.json`` that inference relies on."""

    raw: dict[str, Any]
    name: str
    version: str
    spec: FinderSpec
    #: Who names the characters found: ``"classifier"`` (each box read by the crop classifier) or
    #: ``"finder"`` (the finder's own class head); chosen on the real validation plates at training.
    naming: str = "finder"
    #: The class head's calibration (``lpr-train finder calibrate``), as a classifier's: the
    #: defaults leave its probabilities as they are and flag nothing.
    temperature: float = 1.0
    threshold: float = 0.0
    letter_threshold: float | None = None
    plate_threshold: float | None = None
    #: The plate bar when the classifier names the characters (its other bars are its own).
    classifier_plate_threshold: float = 0.0

    @property
    def model_version(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    @property
    def devanagari(self) -> tuple[str, ...]:
        return tuple(DEVANAGARI.get(label, label) for label in self.spec.labels)

    @classmethod
    def load(cls, path: Path) -> FinderMetadata:
        return cls.from_dict(read_metadata(path), where=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "metadata") -> FinderMetadata:
        try:
            calibration = raw.get("calibration", {})
            meta = cls(
                raw=raw,
                name=raw["name"],
                version=raw["version"],
                spec=FinderSpec.from_dict(raw["input"]),
                naming=str(raw.get("naming", "finder")),
                temperature=float(calibration.get("temperature", 1.0)),
                threshold=float(calibration.get("threshold", 0.0)),
                letter_threshold=optional_float(calibration, "letter_threshold"),
                plate_threshold=optional_float(calibration, "plate_threshold"),
                classifier_plate_threshold=float(calibration.get("classifier_plate_threshold", 0.0)),
            )
            channels = list(raw["output"]["channels"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"cannot read character finder metadata {where}: {exc}") from exc
        if meta.naming not in NAMINGS:
            raise ModelLoadError(f"{where}: naming {meta.naming!r} is not one of {NAMINGS}")
        if channels != [*BOX_HEAD, *meta.spec.labels]:
            raise ModelLoadError(f"{where}: finder head {channels} is not {[*BOX_HEAD, *meta.spec.labels]}")
        return meta


class CharFinder:
    """An ONNX character finder and its metadata; one per process, thread-safe like its session."""

    def __init__(self, onnx_path: Path, metadata_path: Path, intra_op_threads: int = 1) -> None:
        self.metadata = FinderMetadata.load(metadata_path)
        self.session = checked_session(onnx_path, self.metadata.raw, intra_op_threads)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def spec(self) -> FinderSpec:
        return self.metadata.spec

    def heads(self, batch: np.ndarray) -> np.ndarray:
        """Raw head outputs for a batch of letterboxed plates."""
        return self.session.run(None, {self.input_name: batch})[0]

    def warm_up(self) -> None:
        self.heads(np.zeros((1, self.spec.height, self.spec.width, 1), dtype=np.float32))


#: A found box is cut this much larger (share of its size, each side) for a model that names it.
CROP_MARGIN = 0.08


def padded_box(
    x: float, y: float, width: float, height: float, image_width: int, image_height: int
) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) a character's box is cut at: :data:`CROP_MARGIN` larger each
    side, within the image. Every model that names a found character reads it cut so."""
    px, py = width * CROP_MARGIN, height * CROP_MARGIN
    return (
        max(0, math.floor(x - px)),
        max(0, math.floor(y - py)),
        min(image_width, math.ceil(x + width + px)),
        min(image_height, math.ceil(y + height + py)),
    )
