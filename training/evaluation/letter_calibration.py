"""The letter model's temperature and its bar per letter, fitted on its validation letters, and measured.

A letter slot named wrongly is a wrong plate, and a parking system stores what
we answer, so each letter gets its own bar: the lowest at which no validation
crop of another letter is named as it (above :data:`LETTER_FLOOR` always).
Letters are not alike: को has real paint to learn from, ग only renders, and a
bar shared by all would be set by the worst of them. A letter validated on
renders alone cannot say how real paint of another letter is mistaken for it
(a hand-painted को often looks like a rendered क), so its bar is at least the
most confident mistake of the whole validation set. The temperature is the
NLL-minimising one on the same crops (:func:`training.evaluation.calibration.fit_temperature`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lpr.confidence import apply_temperature
from lpr.letter_namer import LETTER_FLOOR
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from lpr.preprocessing import InputSpec
from lpr.repository import MODEL_FILE
from training.common.outputs import read_json, write_json
from training.evaluation.calibration import fit_temperature
from training.fitting.letter_data import LETTER_LABELS, RENDERED, LetterCrop, arrays
from training.fitting.letter_run import RECORD


def _above(confidence: np.ndarray) -> float:
    """Just above the largest of ``confidence`` (0 for none), rounded up to the metadata's six decimals."""
    return math.ceil(float(confidence.max()) * 1e6 + 1) / 1e6 if len(confidence) else 0.0


def letter_bars(
    calibrated: np.ndarray, labels: np.ndarray, real: np.ndarray, floor: float = LETTER_FLOOR
) -> dict[str, float]:
    """Per letter, the lowest bar above every validation crop of another letter named as it; for a
    letter with no real paint among its validation crops (``real``), above every mistake at all."""
    named, confidence = calibrated.argmax(axis=1), calibrated.max(axis=1)
    any_mistake = _above(confidence[named != labels])
    bars = {}
    for k, label in enumerate(LETTER_LABELS):
        bar = max(floor, _above(confidence[(named == k) & (labels != k)]))
        if not (real & (labels == k)).any():
            bar = max(bar, any_mistake)
        bars[label] = bar
    return bars


def _named_at_bar(calibrated: np.ndarray, bars: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per crop: the letter the model names, and whether its probability clears that letter's bar."""
    named = calibrated.argmax(axis=1)
    return named, calibrated.max(axis=1) >= np.array([bars[LETTER_LABELS[k]] for k in named])


def per_letter(
    calibrated: np.ndarray, labels: np.ndarray, crops: Sequence[LetterCrop], bars: Mapping[str, float]
) -> dict[str, dict]:
    """Per letter: crops (by source), right, named at its bar, and crops of other letters named as it."""
    named, cleared = _named_at_bar(calibrated, bars)
    report = {}
    for k, label in enumerate(LETTER_LABELS):
        own = labels == k
        if not own.any():
            continue
        report[label] = {
            "n": int(own.sum()),
            "sources": dict(Counter(c.source for c, o in zip(crops, own, strict=True) if o)),
            "accuracy": round(float((named[own] == k).mean()), 4),
            "named": round(float((cleared[own] & (named[own] == k)).mean()), 4),
            "flagged": round(float((~cleared[own]).mean()), 4),
            "named_wrongly": int((cleared[own] & (named[own] != k)).sum()),
        }
    return report


def totals(calibrated: np.ndarray, labels: np.ndarray, bars: Mapping[str, float]) -> dict[str, float | int]:
    """Over a set: accuracy, the share named at its bar, and how many were named wrongly at it."""
    named, cleared = _named_at_bar(calibrated, bars)
    return {
        "n": len(labels),
        "accuracy": round(float((named == labels).mean()), 4) if len(labels) else 0.0,
        "named": round(float((cleared & (named == labels)).mean()), 4) if len(labels) else 0.0,
        "named_wrongly": int((cleared & (named != labels)).sum()),
    }


def calibrate_run(run: str | Path, sets: Mapping[str, Sequence[LetterCrop]]) -> dict:
    """Fit the exported run's temperature and bars on ``sets["val"]``, measure ``sets["test"]``; both
    into the run's record, with the test figures ``GET /model`` shows."""
    run = Path(run)
    record = read_json(run / RECORD)
    spec = InputSpec.from_dict(record["preprocessing"])
    session = onnx_session(run / MODEL_FILE)
    (x_val, y_val), (x_test, y_test) = (arrays(sets[part], spec) for part in ("val", "test"))
    p_val, p_test = onnx_predict(session, x_val), onnx_predict(session, x_test)
    calibration = calibrate_letters(p_val, y_val, sets["val"], p_test, y_test, sets["test"])
    test = calibration["test"]
    record["calibration"] = calibration
    record["test_metrics"] = {
        "n": test["n"],
        "accuracy": test["accuracy"],
        "errors": round(test["n"] * (1 - test["accuracy"])),
    }
    write_json(run / RECORD, record)
    return record


def calibrate_letters(
    p_val: np.ndarray,
    y_val: np.ndarray,
    val: Sequence[LetterCrop],
    p_test: np.ndarray,
    y_test: np.ndarray,
    test: Sequence[LetterCrop],
) -> dict:
    """The temperature and bars fitted on validation; every figure on validation and on the test letters."""
    temperature = round(fit_temperature(p_val, y_val), 4)
    q_val, q_test = (apply_temperature(p, temperature) for p in (p_val, p_test))
    bars = letter_bars(q_val, y_val, np.array([c.source != RENDERED for c in val]))
    return {
        "temperature": temperature,
        "letter_thresholds": bars,
        "fitted_on": "validation",
        "rule": (
            f"per letter, the lowest bar (at least {LETTER_FLOOR}) above every validation crop of another "
            "letter named as it; for a letter without real paint in validation, above every mistake"
        ),
        "validation": {**totals(q_val, y_val, bars), "per_letter": per_letter(q_val, y_val, val, bars)},
        "test": {**totals(q_test, y_test, bars), "per_letter": per_letter(q_test, y_test, test, bars)},
    }
