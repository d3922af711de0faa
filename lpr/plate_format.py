"""The format of a Bagmati private-motorbike plate, used to read a plate as a whole.

Every plate this project reads says ``बा <lot> प <number>``: the zone letter बा,
a lot number of one to three digits, the class letter प, and a number of one
to four digits; in one row, or ``बा <lot> प`` over ``<number>``. So the first
character can only be बा, exactly one प closes the lot, and every other
character is a digit. Per-character classification ignores this; restricting
each position to the classes the format allows there removes the letter/digit
confusions (a ragged बा read as प, a ४ read as प) that would otherwise spoil a
whole plate. The layout with the best joint probability wins (where प sits
is only ambiguous on a one-row plate).

A reading that cannot be such a plate (three characters, five rows, ...) is
left alone: the format is a prior, not a filter.

NumPy only: the service and ``lpr-train plates`` apply it the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lpr.labels import LABELS

ZONE, SERIES = "ba", "pa"
LOT_DIGITS = (1, 3)
NUMBER_DIGITS = (1, 4)


def _series_positions(row_lengths: Sequence[int]) -> list[int]:
    """Where प may sit (index into the characters in reading order) for this row layout."""
    if len(row_lengths) == 2:
        top, bottom = row_lengths
        lot = top - 2
        fits = LOT_DIGITS[0] <= lot <= LOT_DIGITS[1] and NUMBER_DIGITS[0] <= bottom <= NUMBER_DIGITS[1]
        return [top - 1] if fits else []
    if len(row_lengths) == 1:
        n = row_lengths[0]
        return [
            k
            for k in range(1 + LOT_DIGITS[0], 2 + LOT_DIGITS[1])
            if NUMBER_DIGITS[0] <= n - k - 1 <= NUMBER_DIGITS[1]
        ]
    return []


def constrain(row_lengths: Sequence[int], probabilities: np.ndarray) -> np.ndarray | None:
    """``probabilities`` restricted to the plate format and renormalised per character.

    ``None`` when the row layout cannot be a plate; the caller then keeps the
    unconstrained reading.
    """
    positions = _series_positions(row_lengths)
    if not positions or sum(row_lengths) != len(probabilities):
        return None
    zone, series = LABELS.index(ZONE), LABELS.index(SERIES)
    digits = np.array([label.isdigit() for label in LABELS])
    best, best_score = None, -np.inf
    for k in positions:
        allowed = np.tile(digits, (len(probabilities), 1))
        allowed[0] = False
        allowed[0, zone] = True
        allowed[k] = False
        allowed[k, series] = True
        masked = np.where(allowed, probabilities, 0.0)
        score = float(np.log(np.maximum(masked.max(axis=1), 1e-12)).sum())
        if score > best_score:
            best, best_score = masked, score
    assert best is not None
    totals = best.sum(axis=1, keepdims=True)
    # A position whose allowed classes all got exactly zero keeps its unconstrained answer.
    return np.where(totals > 0, best / np.maximum(totals, 1e-30), probabilities).astype(probabilities.dtype)
