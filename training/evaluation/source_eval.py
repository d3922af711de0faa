"""How a calibrated model does on each real source: accuracy, calibration and the unknown flag.

One table per source, because the figure that matters is the one on data that
looks unlike the home split: a model that is right on ``lpr/test`` and
confidently wrong on a second project's crops is not one a parking system can
run. For every evaluated set of crops of the twelve classes it reports
accuracy (overall and per class), ECE after the temperature, the share
flagged unknown (in-class crops wrongly flagged) and the share answered wrong
*without* the flag, the error a caller cannot see; for a source's real crops
outside the twelve (``cha``, च), the share flagged and what the rest were read as.

NumPy and ONNX Runtime only: the service's own confidence rule
(:mod:`lpr.confidence`) decides what is flagged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lpr.confidence import apply_temperature, unknown
from lpr.labels import LABELS
from lpr.preprocessing import InputSpec
from training.common.metrics import expected_calibration_error
from training.data.dataset import Split
from training.data.sources import Splits


@dataclass(frozen=True)
class EvaluatedSet:
    """Preprocessed crops of one source's split: ``labels`` is ``None`` for crops outside the twelve."""

    source: str
    split: str
    x: np.ndarray
    labels: np.ndarray | None


def evaluated_sets(splits: Splits, spec: InputSpec) -> list[EvaluatedSet]:
    """Every source's validation and test crops, and its validation crops outside the twelve."""
    sets = []
    for source in splits.sources:
        named: list[tuple[str, Split]] = [("val", source.val), ("test", source.test)]
        for split_name, split in named:
            if len(split):
                sets.append(EvaluatedSet(source.spec.name, split_name, split.load(spec), split.labels))
        if source.unknown_val:
            crops = Split(source.unknown_val, np.zeros(len(source.unknown_val), dtype=np.int64))
            sets.append(EvaluatedSet(source.spec.name, "unknown_val", crops.load(spec), None))
    return sets


def per_class_accuracy(right: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Share right of each class present in ``labels``, keyed by class id."""
    return {
        LABELS[c]: round(float(right[labels == c].mean()), 4)
        for c in range(len(LABELS))
        if (labels == c).any()
    }


def in_class_report(q: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Calibrated probabilities of crops of the twelve against their labels."""
    predicted = q.argmax(axis=1)
    right = predicted == labels
    flagged = unknown(q, threshold)
    per_class = per_class_accuracy(right, labels)
    return {
        "n": len(labels),
        "accuracy": round(float(right.mean()), 4),
        "per_class_accuracy": per_class,
        "worst_class": min(per_class, key=per_class.__getitem__),
        "ece": round(expected_calibration_error(q, labels), 4),
        "flagged": round(float(flagged.mean()), 4),
        "wrong_not_flagged": round(float((~right & ~flagged).mean()), 4),
        "errors_flagged": f"{int((~right & flagged).sum())}/{int((~right).sum())}",
    }


def unknown_report(q: np.ndarray, threshold: float) -> dict:
    """Real crops outside the twelve, calibrated: the share flagged, and what the rest pass as."""
    flagged = unknown(q, threshold)
    passed = Counter(LABELS[k] for k in q[~flagged].argmax(axis=1))
    return {
        "n": len(q),
        "flagged": round(float(flagged.mean()), 4),
        "passed_as": dict(passed.most_common(3)),
    }


def source_reports(
    predict: Callable[[np.ndarray], np.ndarray],
    sets: list[EvaluatedSet],
    temperature: float,
    threshold: float,
) -> dict[str, dict]:
    """``{source: {split: report}}`` for the model whose uncalibrated probabilities ``predict`` returns."""
    reports: dict[str, dict] = {}
    for s in sets:
        q = apply_temperature(predict(s.x), temperature)
        block = unknown_report(q, threshold) if s.labels is None else in_class_report(q, s.labels, threshold)
        reports.setdefault(s.source, {})[s.split] = block
    return reports
