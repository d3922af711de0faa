"""Real plate characters for the crop classifier, and the plate bar fitted on plates it never saw.

What a user relies on: the classifier fits characters of the fitted bikes' plates only, in the
letter model's fitting quarters (never a held-out bike, never the quarter the finder's plate bar
is fitted on), each named by its plate's text; and the plate bar that decides ``confident`` is
fitted on plates whose characters the classifier never fitted.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED

from lpr.char_finder import CharFinder
from lpr.labels import LABELS
from lpr.preprocessing import InputSpec
from lpr.repository import DEFAULT_REPOSITORY, locate
from training.data.dataset import Split
from training.data.photos import detector_dataset
from training.data.plate_texts import real_plates
from training.data.sources import Splits
from training.evaluation.finder_calibration import unseen_by_classifier
from training.evaluation.real_plates import crop_bytes
from training.fitting.letter_data import finder_find, letter_part
from training.fitting.plate_chars import SPLIT_SEED, plate_chars
from training.fitting.recipes import RECIPES
from training.fitting.train import fit_inputs

PHOTOS = SHARED / "data" / "plate-photos"


@pytest.fixture(scope="module")
def plates():
    return real_plates(PHOTOS, detector_dataset(DEFAULT_REPOSITORY))


@pytest.fixture(scope="module")
def some(plates):
    """A few plates of every part: held-out bikes, the fitting quarters and the validation quarter."""
    parts = {"test": [], "fit": [], "val": []}
    for plate in plates:
        part = letter_part(plate, SPLIT_SEED)
        if part in parts and len(parts[part]) < 4:
            parts[part].append(plate)
    return [p for chosen in parts.values() for p in chosen]


@pytest.fixture(scope="module")
def chars(some):
    files = locate(DEFAULT_REPOSITORY, "char-finder")
    find = finder_find(CharFinder(files.onnx, files.metadata))
    return plate_chars(some, lambda p: crop_bytes(p.photo), find, {"finder": "served"})


def test_only_the_fitting_quarters_of_fitted_bikes_give_characters(some, chars) -> None:
    by_name = {p.name: p for p in some}
    assert chars.crops, "the finder boxes some of these plates as their text reads"
    for crop in chars.crops:
        plate = by_name[crop.group]
        assert plate.split == "fit" and letter_part(plate, SPLIT_SEED) == "fit"
        assert crop.label in {s.label for s in plate.symbols}  # named by the plate's own text
    assert chars.provenance["plates"] == sorted({c.group for c in chars.crops})
    assert sum(chars.provenance["counts"].values()) == len(chars.crops)


def test_the_twelve_are_fitted_in_copies_and_other_letters_towards_no_class(chars) -> None:
    spec = InputSpec()
    x, y, other = chars.arrays(spec, copies=3)
    named = [c for c in chars.crops if c.label in LABELS]
    assert x.shape == (3 * len(named), *spec.shape) and len(y) == len(x)
    assert np.array_equal(y[::3], [LABELS.index(c.label) for c in named])
    assert len(other) == sum(c.label not in LABELS for c in chars.crops)  # को and the rest


def test_a_recipe_that_fits_plate_characters_refuses_to_train_without_them() -> None:
    with pytest.raises(ValueError, match="plate characters"):
        nothing = Split((), np.zeros(0, dtype=np.int64))
        fit_inputs(Splits(nothing, nothing, nothing), RECIPES["multi-plates"], seed=1)


def test_the_plate_bar_is_fitted_on_plates_whose_characters_the_classifier_never_fitted(plates) -> None:
    fitted = [p for p in plates if p.split == "fit"]
    record = {"dataset": {"plate_chars": {"split_seed": SPLIT_SEED}}}
    unseen = unseen_by_classifier(fitted, record)
    assert unseen and all(letter_part(p, SPLIT_SEED) == "val" for p in unseen)
    fitted_texts = {p.text for p in fitted if letter_part(p, SPLIT_SEED) == "fit"}
    assert not fitted_texts & {p.text for p in unseen}  # no twin of a fitted bike
    assert unseen_by_classifier(fitted, {"dataset": {}}) == fitted  # a classifier that fitted none
