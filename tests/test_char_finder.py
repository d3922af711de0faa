"""The character finder and the plates it learns from: what the whole-plate reader relies on.

- Training plates are painted the way real ones are: both layouts, neighbours
  that touch, letters outside the twelve labelled ``?``, every character
  boxed, and a seed names the set.
- A plate whose character count the heatmap did not settle by itself (the
  grammar or the names had to choose) is never ``confident``.
- The shipped finder reads real plates, held out by bike, from ``../shared``.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from lpr.char_finder import FINDER_LABELS, FINDER_MODEL, FinderMetadata, FinderSpec, Found
from lpr.found_reader import SURE, read_found, rows_of
from lpr.plate_reader import UNREADABLE
from lpr.repository import DEFAULT_REPOSITORY, locate
from training.synthesis.painted import painted_plates
from training.synthesis.plates import crops_in

LPR_TRAIN = SHARED / "data" / "lpr" / "train"
CHA = SHARED / "data" / "nnprs-chars" / "cha"


@pytest.fixture(scope="module")
def painted():
    cha = sorted(CHA.glob("*"))[:40]
    return list(painted_plates(crops_in(LPR_TRAIN), cha, 60, seed=3))


def test_painted_plates_come_in_both_layouts_with_every_character_boxed(painted) -> None:
    rows = {len(plate.labels) for plate in painted}
    assert rows == {1, 2}
    for plate in painted:
        width, height = plate.image.size
        assert [len(r) for r in plate.boxes] == [len(r) for r in plate.labels]
        for x, y, w, h in (box for row in plate.boxes for box in row):
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height and w > 0 and h > 0
        flat = [label for row in plate.labels for label in row]
        # zone + lot + class over the serial: the grammar's places, letters at the zone and class
        assert flat[0] in ("ba", UNREADABLE) and all(label in FINDER_LABELS for label in flat)
        assert 5 <= len(flat) <= 10
    # letters outside the twelve are painted, and labelled ? in their place
    assert sum(plate.labels[0][0] == UNREADABLE for plate in painted) >= 20


def test_painted_neighbours_touch_or_overlap_on_some_plates(painted) -> None:
    touching = 0
    for plate in painted:
        for row in plate.boxes:
            touching += sum(a[0] + a[2] >= b[0] for a, b in itertools.pairwise(row))
    assert touching >= 10


def test_a_seed_names_the_painted_set() -> None:
    cha = sorted(CHA.glob("*"))[:10]

    def pictures(seed: int) -> list[bytes]:
        out = []
        for plate in painted_plates(crops_in(LPR_TRAIN), cha, 3, seed=seed):
            buffer = io.BytesIO()
            plate.image.save(buffer, "PNG")
            out.append(buffer.getvalue())
        return out

    assert pictures(9) == pictures(9)
    assert pictures(9) != pictures(10)


def _meta() -> FinderMetadata:
    spec = FinderSpec()
    return FinderMetadata.from_dict(
        {
            "name": FINDER_MODEL,
            "version": "0.0.0",
            "input": spec.to_dict(),
            "output": {"channels": ["centre", "dx", "dy", "log_width", "log_height", *spec.labels]},
        }
    )


def _found(scores: list[float], labels: list[str]) -> list[Found]:
    """One row of characters, left to right, each named with certainty."""
    found = []
    for i, (score, label) in enumerate(zip(scores, labels, strict=True)):
        p = np.full(len(FINDER_LABELS), 1e-6)
        p[FINDER_LABELS.index(label)] = 1.0
        found.append(Found(10.0 + 30 * i, 10.0, 24.0, 40.0, score, p / p.sum()))
    return sorted(found, key=lambda f: -f.score)


def test_a_plate_whose_count_the_grammar_chose_is_never_confident() -> None:
    labels = ["ba", "1", "2", "pa", "3", "4", "5", "6"]
    # The class letter is faint: without it no layout fits, so the grammar takes it in.
    found = _found([0.9, 0.9, 0.9, 0.3, 0.9, 0.9, 0.9, 0.9], labels)
    probabilities = np.array([f.probabilities for f in found])
    doubt = read_found(300, 60, found, probabilities, _meta())
    assert [c.label for c in doubt.characters] == labels  # the weak eighth peak is a character...
    assert doubt.all_known and not doubt.count_certain and not doubt.confident  # ...but not for sure


def test_a_plate_the_heatmap_is_sure_of_may_be_confident() -> None:
    labels = ["ba", "1", "2", "pa", "3", "4", "5", "6"]
    found = _found([0.9] * 8, labels)
    reading = read_found(300, 60, found, np.array([f.probabilities for f in found]), _meta())
    assert all(f.score >= SURE for f in found)
    assert reading.count_certain and reading.confident
    assert [c.label for c in reading.characters] == labels


def test_a_tilted_serial_row_of_big_digits_under_a_small_top_row_stays_one_row() -> None:
    """A two-row plate seen at an angle: the serial digits are taller than the top row's letters
    and their centres drop along the row by more than half a top-row letter's height."""
    p = np.full(len(FINDER_LABELS), 1.0 / len(FINDER_LABELS))
    top = [Found(100.0 + 30 * i, 60.0, 25.0, 34.0, 0.9, p) for i in range(4)]  # centres at y 77
    serial = [Found(80.0, 98.0, 72.0, 51.0, 0.9, p), Found(214.0, 122.0, 74.0, 45.0, 0.9, p)]  # 123.5, 144.5
    rows = rows_of([*top, *serial])
    assert [len(row) for row in rows] == [4, 2]
    assert rows[1] == serial  # left to right
    # Two rows of the same small size a row apart are still two rows.
    assert [len(row) for row in rows_of([*top, *(replace(f, y=f.y + 40) for f in top)])] == [4, 4]


def test_the_shipped_finder_is_a_served_version_of_its_own_kind() -> None:
    files = locate(DEFAULT_REPOSITORY, FINDER_MODEL)
    assert sorted(p.name for p in Path(files.folder).iterdir()) == ["model.json", "model.onnx"]
    meta = FinderMetadata.load(files.metadata)
    assert meta.spec.labels == FINDER_LABELS
    assert 0.0 < meta.plate_bar <= 1.0
