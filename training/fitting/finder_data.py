"""The character finder's training pairs: painted plates, and the fitted real plates' own characters.

Painted plates (:mod:`training.synthesis.painted`) carry exact boxes. Real
plates carry only their text, so their boxes come from the finder itself
(:func:`real_pairs`): a finder trained on painted plates is run on each fitted
real plate, both ways up; the strongest peaks, as many as the text has
characters, are kept when they fall into the rows the text has, and are named
by the text in reading order. A plate whose rows do not come out is left out,
not guessed. Only the ``fit`` plates are used: the validation plates (split by
bike) decide between designs and are never trained on.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lpr.char_finder import FINDER_LABELS, OTHER, FinderSpec, Found
from lpr.found_reader import rows_of
from lpr.labels import LABELS
from training.data.plate_texts import RealPlate
from training.data.sources import model_splits
from training.fitting.char_finder import encode
from training.synthesis.painted import PaintedPlate, painted_plates

#: Share of painted plates shown upside down with nothing to find: a plate read the wrong way up
#: then finds few characters, and the right way wins (:func:`lpr.photo_reader.read_upright`).
UPSIDE_DOWN = 0.12
#: Painted plates are made in chunks of this many, one seed each, in parallel processes.
CHUNK = 500


def class_index(label: str | None) -> int:
    """A truth label as the finder's class index: the twelve, ``?`` for any other letter, -1 unreadable."""
    if label is None:
        return -1
    return FINDER_LABELS.index(label if label in LABELS else OTHER)


def fitted_crops(
    record: dict[str, Any], data_home: str | Path | None = None
) -> tuple[dict[str, list[Path]], list[Path]]:
    """The classifier's fitted crops of every source by class, and its fitted real च: never a held-out one."""
    by_class: dict[str, list[Path]] = {label: [] for label in LABELS}
    cha: list[Path] = []
    for source in model_splits(record, data_home).sources:
        if source.spec.twin_of:  # a photographed twin paints the same glyphs again
            continue
        for label, paths in source.fit.by_class().items():
            by_class[label].extend(paths)
        cha.extend(source.unknown_fit)
    return by_class, cha


def _chunk(
    args: tuple[dict[str, list[Path]], list[Path], int, int, FinderSpec],
) -> tuple[np.ndarray, np.ndarray]:
    crops, cha, count, seed, spec = args
    rng = np.random.default_rng([seed, 1])
    xs, ys = [], []
    for plate in painted_plates(crops, cha, count, seed):
        boxes = [box for row in plate.boxes for box in row]
        classes = [class_index(label) for row in plate.labels for label in row]
        image = plate.image
        if rng.random() < UPSIDE_DOWN:  # no characters the wrong way up: the reader's turn is told by it
            image, boxes, classes = image.rotate(180), [], []
        x, y = encode(image, boxes, classes, spec, rng)
        xs.append(x)
        ys.append(y.astype(np.float16))
    return np.stack(xs), np.stack(ys)


def _jobs(count: int, seed: int) -> list[tuple[int, int]]:
    """(plates, seed) of each chunk of a set of ``count`` plates named by ``seed``."""
    return [(min(CHUNK, count - start), seed * 1000 + k) for k, start in enumerate(range(0, count, CHUNK))]


def painted_set(
    crops: dict[str, list[Path]], cha: list[Path], count: int, seed: int
) -> Iterator[PaintedPlate]:
    """The plates of :func:`painted_pairs`' set, as pictures with their truth (to read them whole)."""
    for size, chunk_seed in _jobs(count, seed):
        yield from painted_plates(crops, cha, size, chunk_seed)


def painted_pairs(
    crops: dict[str, list[Path]], cha: list[Path], count: int, seed: int, spec: FinderSpec, workers: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` painted plates as (inputs, targets); chunk ``k`` is seeded ``[seed, k]``, so the set
    is the same however many workers make it."""
    jobs = [(crops, cha, size, chunk_seed, spec) for size, chunk_seed in _jobs(count, seed)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_chunk, jobs))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def truth_rows(plate: RealPlate) -> list[int]:
    """How many characters each row of a two-row plate holds: zone, lot and class over the serial."""
    top = sum(symbol.slot != "serial" for symbol in plate.symbols)
    return [top, len(plate.symbols) - top]


def label_real(
    plate: RealPlate, image: Image.Image, find: Callable[[Image.Image], list[Found]]
) -> tuple[Image.Image, list[tuple[float, float, float, float]], list[int]] | None:
    """A real plate's characters boxed by the finder and named by its text, the right way up; or None.

    Of the turns a box allows, the one whose strongest peaks fall into the text's rows and whose
    class head gives the text the highest probability is kept.
    """
    turns = (90, 270) if image.height > image.width * 1.05 else (0, 180)
    classes = [class_index(s.label) for s in plate.symbols]
    best: tuple[float, Image.Image, list[Found]] | None = None
    for turn in turns:
        turned = image.rotate(turn, expand=True) if turn else image
        found = find(turned)[: len(classes)]
        rows = rows_of(found)
        if len(found) != len(classes) or [len(r) for r in rows] not in (truth_rows(plate), [len(classes)]):
            continue
        ordered = [f for row in rows for f in row]
        fit = sum(
            np.log(max(float(f.probabilities[c]), 1e-6))
            for f, c in zip(ordered, classes, strict=True)
            if c >= 0
        )
        if best is None or fit > best[0]:
            best = (fit, turned, ordered)
    if best is None:
        return None
    _, turned, ordered = best
    return turned, [(f.x, f.y, f.width, f.height) for f in ordered], classes


def real_pairs(
    plates: Sequence[RealPlate],
    crop: Callable[[RealPlate], bytes],
    find: Callable[[Image.Image], list[Found]],
    spec: FinderSpec,
    repeats: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each fitted real plate that could be labelled, ``repeats`` times with a fresh margin each."""
    rng = np.random.default_rng(seed)
    xs, ys, names = [], [], []
    for plate in plates:
        image = Image.open(io.BytesIO(crop(plate))).convert("RGB")
        labelled = label_real(plate, image, find)
        if labelled is None:
            continue
        turned, boxes, classes = labelled
        names.append(plate.name)
        for _ in range(repeats):
            x, y = encode(turned, boxes, classes, spec, rng)
            xs.append(x)
            ys.append(y.astype(np.float16))
    if not xs:
        rows, cols = spec.grid
        return (
            np.zeros((0, spec.height, spec.width), np.uint8),
            np.zeros((0, rows, cols, 7), np.float16),
            names,
        )
    return np.stack(xs), np.stack(ys), names
