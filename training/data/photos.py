"""The plate photos: reading them and splitting them by plate.

``plate-photos/`` holds 126 motorbike photos, one plate box each (YOLO, in
the *stored* pixel grid, before any EXIF rotation), some lying on their side,
some the same bike twice. A split by file would put a bike on both sides, so
photos are grouped by plate first: the same name stem (``x.jpg`` and
``x-1.jpg``), the same text where it is known, or plate crops that look alike
(:mod:`training.data.grouping`'s signature, the crop turned landscape first).
The detector's training scenes are made from them in :mod:`training.synthesis.scenes`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lpr.detection import DETECTOR_MODEL
from lpr.repository import locate
from training.common.outputs import REPORTS
from training.common.records import load_record
from training.data.grouping import cluster, signature

#: Share of photos' plate groups held out for validation.
VAL_FRACTION = 0.2


@dataclass(frozen=True)
class Photo:
    """One photo: its file, its plate box ``(left, top, right, bottom)`` in stored pixels, its text if any."""

    path: Path
    box: tuple[float, float, float, float]
    text: str | None = None

    def image(self) -> Image.Image:
        """The stored pixels, not EXIF-rotated: the grid the box is given in."""
        with Image.open(self.path) as image:
            return image.convert("RGB")


def open_photos(root: str | Path) -> list[Photo]:
    """Every ``images/*.jpg`` with its ``labels/*.txt`` box, and ``text.json``'s text where given."""
    root = Path(root)
    texts = (
        json.loads((root / "text.json").read_text(encoding="utf-8")) if (root / "text.json").exists() else {}
    )
    photos = []
    for path in sorted((root / "images").glob("*.jpg")):
        label = root / "labels" / f"{path.stem}.txt"
        if not label.exists():
            continue
        _, cx, cy, w, h = (float(v) for v in label.read_text().split()[:5])
        with Image.open(path) as image:
            width, height = image.size
        box = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        photos.append(Photo(path, box, texts.get(path.name)))
    if not photos:
        raise FileNotFoundError(f"no photos with labels under {root}")
    return photos


def plate_crop(photo: Photo, image: Image.Image | None = None) -> Image.Image:
    image = image or photo.image()
    return image.crop(tuple(round(v) for v in photo.box))


def plate_groups(photos: Sequence[Photo]) -> np.ndarray:
    """A group id per photo: one per plate, as far as the stem, the text and the crop's look tell."""
    parent = list(range(len(photos)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    keys: dict[str, int] = {}
    for i, photo in enumerate(photos):
        for key in (f"stem:{photo.path.stem.split('-')[0]}", f"text:{photo.text}" if photo.text else None):
            if key is not None:
                union(i, keys.setdefault(key, i))
    vectors = []
    for photo in photos:
        crop = plate_crop(photo)
        vectors.append(signature(crop.rotate(90, expand=True) if crop.height > crop.width else crop))
    for i, group in enumerate(cluster(np.stack(vectors))):
        union(i, keys.setdefault(f"look:{group}", i))
    roots = [find(i) for i in range(len(photos))]
    _, ids = np.unique(roots, return_inverse=True)
    return ids.astype(np.int64)


def split_photos(
    photos: Sequence[Photo], seed: int, fraction: float = VAL_FRACTION
) -> tuple[list[int], list[int]]:
    """Indices ``(fit, validation)``: about ``fraction`` of the plate groups held out, whole groups only."""
    groups = plate_groups(photos)
    ids = np.unique(groups)
    rng = np.random.default_rng(seed)
    rng.shuffle(ids)
    held: set[int] = set()
    target = fraction * len(photos)
    count = 0
    for group in ids:
        if count >= target:
            break
        members = np.flatnonzero(groups == group)
        held.update(members.tolist())
        count += len(members)
    return [i for i in range(len(photos)) if i not in held], sorted(held)


def detector_dataset(models: str | Path, reports: str | Path = REPORTS) -> dict[str, list[str]]:
    """The shipped detector's photo split, as its record keeps it (``fit`` and ``validation`` names)."""
    files = locate(Path(models), DETECTOR_MODEL)
    record = load_record(files, reports)
    if "dataset" not in record:
        raise FileNotFoundError(
            f"no record of {files.name} {files.version} with its photo split in {reports}"
        )
    return record["dataset"]
