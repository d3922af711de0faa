"""Plates painted with letters outside the twelve, scored: what an honest reader may answer there.

A synthetic plate's truth holds ``?`` where a zone or class letter outside the
model's twelve is painted (:mod:`training.synthesis.plates`). The letter model
may name it: named right, it counts as the ``?`` the truth holds (both are
honest answers); named wrongly, it stays wrong. Used by ``lpr-train plates``
(:mod:`training.evaluation.plates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lpr.plate_grammar import LETTERS
from lpr.plate_reader import UNREADABLE
from training.synthesis.plates import Plate


def letter_id(glyph: str) -> str:
    return next(label for label, painted in LETTERS.items() if painted == glyph)


def _foreign_places(plate: Plate) -> list[tuple[int, int]]:
    return [(r, c) for r, row in enumerate(plate.rows) for c, label in enumerate(row) if label == UNREADABLE]


def as_truth(plate: Plate, read: list[list[str]]) -> list[list[str]]:
    """The reading scored against the plate's truth: a letter outside the twelve named right (the
    letter model's answer) counts as the ``?`` the truth holds, as an honest ``?`` does; a letter
    named wrongly stays wrong."""
    if [len(row) for row in read] != [len(row) for row in plate.rows]:
        return read
    out = [list(row) for row in read]
    for letter, (r, c) in zip(plate.foreign, _foreign_places(plate), strict=True):
        if out[r][c] == letter_id(letter["letter"]):
            out[r][c] = UNREADABLE
    return out


def in_rows(labels: Sequence[str], rows: Sequence[Sequence[str]]) -> list[list[str]]:
    """Flat labels cut into rows as long as ``rows``' (any labels left over make a row of their own)."""
    out, start = [], 0
    for row in rows:
        out.append(list(labels[start : start + len(row)]))
        start += len(row)
    return out + ([list(labels[start:])] if start < len(labels) else [])


def foreign_reads(plate: Plate, reading: Any) -> list[tuple[dict[str, str], str | None]]:
    """Each foreign letter of the plate and what the reader answered in its place (None: mis-segmented)."""
    places = _foreign_places(plate)
    read = reading.labels
    segmented = [len(row) for row in read] == [len(row) for row in plate.rows]
    return [
        (letter, read[r][c] if segmented else None)
        for letter, (r, c) in zip(plate.foreign, places, strict=True)
    ]


def foreign_summary(per_plate: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Plates with letters outside the twelve: accuracy, flagged letters by symbol, false confidence."""
    foreign = [p for p in per_plate if p["foreign"]]
    if not foreign:
        return {}
    letters = [letter for p in foreign for letter in p["foreign"]]
    by_symbol: dict[str, list[tuple[bool, bool]]] = {}
    for letter in letters:
        by_symbol.setdefault(letter["letter"], []).append((letter["flagged"], letter["named"]))
    in_class = [p for p in per_plate if not p["foreign"]]
    return {
        "foreign_plates": len(foreign),
        "in_class_plates": len(in_class),
        "in_class_whole_plate_accuracy": round(
            sum(p["correct"] for p in in_class) / max(len(in_class), 1), 4
        ),
        "foreign_whole_plate_accuracy": round(sum(p["correct"] for p in foreign) / len(foreign), 4),
        "foreign_letters_flagged": round(sum(letter["flagged"] for letter in letters) / len(letters), 4),
        "foreign_letters_named": round(sum(letter["named"] for letter in letters) / len(letters), 4),
        "foreign_letters_misread": sum(not (letter["flagged"] or letter["named"]) for letter in letters),
        "foreign_plates_false_confident": round(
            sum(p["confident"] and not p["correct"] for p in foreign) / len(foreign), 4
        ),
        "foreign_flagged_by_symbol": {
            symbol: {
                "letters": len(answers),
                "flagged": round(sum(f for f, _ in answers) / len(answers), 4),
                "named": round(sum(n for _, n in answers) / len(answers), 4),
            }
            for symbol, answers in sorted(by_symbol.items())
        },
    }
