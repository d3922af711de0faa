"""Near-duplicate groups, so that a validation split never holds a copy of a fitted crop.

The second source (``nnprs-chars``) is full of augmented copies of one crop:
shifted, rotated a little, thickened. Split by file, a copy of nearly every
validation crop would be fitted and validation would flatter.

The measure is the cosine distance between the crops' grey pixels after a
small blur, each crop squashed to :data:`SIDE` px a side, centred and scaled to
unit length: blur and a coarse grid absorb the shifts of a pixel or two and
the stroke thickening that the copies differ by, and centring keeps
"mostly black" from counting as similar. Groups are cut from a *complete*
linkage tree at :data:`THRESHOLD`: every two members of a group are within
it. Single linkage (or union-find over near pairs) chains look-alike glyphs
of one class into a few huge groups; complete linkage cannot.

Only crops of the same class are compared: copies of a crop carry its label.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from scipy.cluster.hierarchy import fcluster, linkage

#: The grid the crops are compared on.
SIDE = 16
#: Largest cosine distance between any two members of one group.
THRESHOLD = 0.2


def signature(image: Image.Image) -> np.ndarray:
    """A crop as a unit vector: grey, glyph bright, blurred, squashed to ``SIDE`` px, centred."""
    grey = ImageOps.exif_transpose(image).convert("L")
    pixels = np.asarray(grey, dtype=np.float32)
    # Colour crops are bright paint on a darker plate like the rest, but a few are dark on light.
    if np.median(pixels) > pixels.mean() + 1 and np.median(pixels) > 127:
        grey = ImageOps.invert(grey)
    small = grey.filter(ImageFilter.GaussianBlur(max(grey.size) / 32)).resize(
        (SIDE, SIDE), Image.Resampling.BILINEAR
    )
    vector = np.asarray(small, dtype=np.float32).ravel()
    vector = vector - vector.mean()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def signatures(paths: Sequence[Path]) -> np.ndarray:
    """One :func:`signature` per file, as rows."""
    rows = []
    for path in paths:
        with Image.open(path) as image:
            rows.append(signature(image))
    return np.stack(rows) if rows else np.zeros((0, SIDE * SIDE), dtype=np.float32)


def cluster(vectors: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Group ids (0..k-1, in order of first member) of unit row vectors, complete linkage at ``threshold``."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    distance = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    condensed = distance[np.triu_indices(n, k=1)]
    raw = fcluster(linkage(condensed, method="complete"), t=threshold, criterion="distance")
    _, first, ids = np.unique(raw, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[ids].astype(np.int64)


def near_duplicate_groups(
    paths: Sequence[Path], labels: np.ndarray, threshold: float = THRESHOLD
) -> np.ndarray:
    """A group id per crop: near-duplicates of the same class share one, no group spans two classes."""
    groups = np.empty(len(paths), dtype=np.int64)
    vectors = signatures(paths)
    offset = 0
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        ids = cluster(vectors[members], threshold)
        groups[members] = ids + offset
        offset += int(ids.max()) + 1
    return groups


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, held_out)``: about ``fraction`` of each class's groups held out, whole groups only."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        ids = np.unique(groups[members])
        rng.shuffle(ids)
        target = fraction * len(members)
        taken = 0
        chosen = []
        for group in ids:
            if taken >= target:
                break
            size = int(np.count_nonzero(groups[members] == group))
            chosen.append(group)
            taken += size
        held.append(members[np.isin(groups[members], chosen)])
    held_index = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    rest_index = np.setdiff1d(np.arange(len(labels)), held_index)
    return rest_index, held_index
