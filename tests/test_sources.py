"""Several real sources: the near-duplicate grouping, the grouped split, and the multi-source loader.

What a user of ``lpr-train`` relies on: a validation crop never has an augmented
copy among the fitted crops, a photographed crop follows its binarised twin,
the held-out test splits are never fitted, crops outside the twelve classes are
kept apart, and the same seed gives the same split and the same hashes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lpr.labels import LABELS
from training.data.grouping import cluster, grouped_split, near_duplicate_groups, signature
from training.data.sources import SOURCES, open_sources, recipe_splits

SHARED = Path(__file__).resolve().parents[2] / "shared"
HOME = SHARED / "data"

SHAPES = ("ring", "bar", "cross", "wedge")


def glyph(shape: str, dx: int = 0, dy: int = 0, width: int = 5, side: int = 32) -> Image.Image:
    """A white shape on black, shifted and thickened the way the second source's copies are."""
    image = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(image)
    box = (8 + dx, 6 + dy, 24 + dx, 26 + dy)
    if shape == "ring":
        draw.ellipse(box, outline=255, width=width)
    elif shape == "bar":
        draw.line((16 + dx, 5 + dy, 16 + dx, 27 + dy), fill=255, width=width)
    elif shape == "cross":
        draw.line((6 + dx, 16 + dy, 26 + dx, 16 + dy), fill=255, width=width)
        draw.line((16 + dx, 5 + dy, 16 + dx, 27 + dy), fill=255, width=width)
    else:
        draw.polygon([(6 + dx, 26 + dy), (16 + dx, 5 + dy), (26 + dx, 26 + dy)], outline=255, width=width)
    return image


def copies(shape: str) -> list[Image.Image]:
    """One thick-stroked glyph and four copies: shifted a pixel, thickened or thinned a pixel."""
    return [glyph(shape, dx, dy, w) for dx, dy, w in [(0, 0, 5), (1, 0, 5), (0, 1, 5), (1, 1, 5), (0, 0, 6)]]


def test_augmented_copies_share_a_group_and_different_glyphs_do_not() -> None:
    images = [image for shape in SHAPES for image in copies(shape)]
    truth = np.repeat(np.arange(len(SHAPES)), 5)
    groups = cluster(np.stack([signature(i) for i in images]))
    for shape in range(len(SHAPES)):
        assert len(set(groups[truth == shape].tolist())) == 1, f"copies of {SHAPES[shape]} were split apart"
    assert len(set(groups.tolist())) == len(SHAPES), "different glyphs were merged"


def test_groups_never_span_two_classes(tmp_path: Path) -> None:
    """Copies carry their crop's label: the same picture filed under two classes is two groups."""
    paths = []
    for i, image in enumerate(copies("ring") * 2):
        path = tmp_path / f"{i}.png"
        image.save(path)
        paths.append(path)
    labels = np.repeat([0, 1], 5)
    groups = near_duplicate_groups(paths, labels)
    assert set(groups[:5].tolist()).isdisjoint(groups[5:].tolist())


def test_grouped_split_keeps_whole_groups_on_one_side_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), rng.integers(1, 9, size=60))
    labels = groups % 3
    rest, held = grouped_split(labels, groups, 0.25, seed=7)
    assert set(groups[rest].tolist()).isdisjoint(groups[held].tolist())
    assert sorted([*rest.tolist(), *held.tolist()]) == list(range(len(groups)))
    for cls in range(3):
        share = np.isin(held, np.flatnonzero(labels == cls)).sum() / (labels == cls).sum()
        assert 0.2 <= share <= 0.45, f"class {cls}: {share:.2f} held out"
    again = grouped_split(labels, groups, 0.25, seed=7)
    other = grouped_split(labels, groups, 0.25, seed=8)
    assert np.array_equal(held, again[1]) and not np.array_equal(held, other[1])


def synthetic_home(root: Path) -> Path:
    """A data home laid out like ``../shared/data``: two split sources (twins) and one pool with च."""
    for name in ("lpr", "lpr-colour"):
        for split, n in (("train", 6), ("test", 2)):
            for label in ("0", "ba"):
                folder = root / name / split / label
                folder.mkdir(parents=True)
                for i in range(n):
                    shape = SHAPES[i % 4] if label == "0" else SHAPES[(i + 2) % 4]
                    image = glyph(shape, i % 2, 0)
                    (image if name == "lpr" else image.convert("RGB")).save(folder / f"{split}{i}.png")
    for label, shape in (("5", "bar"), ("pa", "ring"), ("cha", "cross")):
        folder = root / "nnprs-chars" / label
        folder.mkdir(parents=True)
        for i, image in enumerate(copies(shape) + copies("wedge")):
            image.save(folder / f"{i}.png")
    return root


def test_the_loader_reads_every_layout_and_keeps_the_test_splits_and_unknowns_apart(tmp_path: Path) -> None:
    home = synthetic_home(tmp_path)
    lpr, colour, nnprs = open_sources(["lpr", "lpr-colour", "nnprs-chars"], 0.3, seed=1, home=home)
    for source in (lpr, colour):
        assert len(source.test) == 4 and len(source.fit) + len(source.val) == 12
        fitted = {p.resolve() for p in (*source.fit.paths, *source.val.paths)}
        assert fitted.isdisjoint(p.resolve() for p in source.test.paths), "a test crop is fitted"
    names = {f"{p.parent.name}/{p.name}" for p in lpr.val.paths}
    assert names and names == {f"{p.parent.name}/{p.name}" for p in colour.val.paths}, "colour twins drift"
    assert not nnprs.test.paths
    assert {LABELS[i] for i in nnprs.fit.labels} | {LABELS[i] for i in nnprs.val.labels} == {"5", "pa"}
    unknown = {p.parent.name for p in (*nnprs.unknown_fit, *nnprs.unknown_val)}
    assert unknown == {"cha"} and nnprs.unknown_val and nnprs.unknown_fit
    record = nnprs.record()
    assert record["sizes"]["unknown_val"] == len(nnprs.unknown_val) and len(record["sha256"]) == 64
    assert not any(str(tmp_path) in str(v) for v in record.values()), "a machine path in the record"
    # Same seed, same everything; another seed, another validation split.
    again = open_sources(["lpr", "lpr-colour", "nnprs-chars"], 0.3, seed=1, home=home)
    assert [s.record() for s in again] == [lpr.record(), colour.record(), nnprs.record()]
    assert [p.name for p in again[2].val.paths] == [p.name for p in nnprs.val.paths]


def test_the_loader_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        open_sources(["lpr", "elsewhere"], 0.2, 1, tmp_path)
    with pytest.raises(FileNotFoundError, match="nnprs-chars"):
        open_sources(["nnprs-chars"], 0.2, 1, tmp_path)


@pytest.mark.skipif(not (HOME / "nnprs-chars").is_dir(), reason="../shared/data is not beside the checkout")
def test_the_real_sources_split_by_groups_with_no_copy_across() -> None:
    """On the real data: no near-duplicate group of the second source is on both sides."""
    recipe = {"sources": list(SOURCES), "val_fraction": 0.2}
    splits = recipe_splits(recipe, seed=1234, data=HOME)
    lpr, colour, nnprs = splits.sources
    assert len(lpr.test) == len(colour.test) == 403
    assert len(splits.test) == 403 and len(splits.val) == len(lpr.val) + len(colour.val) + len(nnprs.val)
    pool_paths = (*nnprs.fit.paths, *nnprs.val.paths)
    labels = np.concatenate([nnprs.fit.labels, nnprs.val.labels])
    groups = near_duplicate_groups(pool_paths, labels)
    fit_groups, val_groups = groups[: len(nnprs.fit)], groups[len(nnprs.fit) :]
    assert set(fit_groups.tolist()).isdisjoint(val_groups.tolist())
    assert 0.15 <= len(nnprs.val) / len(pool_paths) <= 0.3
    assert len(nnprs.unknown_val) >= 100, "real च held out to measure the unknown flag"
