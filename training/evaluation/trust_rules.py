"""``lpr-train trust``: what one "unknown" threshold on the served classifier can promise, per source.

A client that stores what ``/predict`` does not flag stores its errors, so the
flag must catch wrong crops on every source, not only on the home split; a flag
that catches everything catches right crops too, and sends them to a person.
Three thresholds on the top calibrated probability (the service's one rule,
:mod:`lpr.confidence`), each chosen on the pooled **validation** sets of every
source and then read on every set, test included:

* ``served``: the shipped model's own (at most 0.5 % of validation flagged);
* ``catch_errors``: the lowest at which every source's validation has at most
  :data:`MAX_WRONG_NOT_FLAGGED` of its crops wrong and not flagged;
* ``flag_budget``: the highest at which every source's validation flags at most
  :data:`MAX_FLAGGED` of its in-class crops.

When ``catch_errors`` is above ``flag_budget`` no threshold meets both targets on
validation, and none is tuned on test to pretend otherwise: the report says so
(``both_met_on_validation``), and the served rule does not change.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lpr.confidence import apply_temperature
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from lpr.preprocessing import InputSpec
from lpr.repository import DEFAULT_MODEL, locate
from training.common.outputs import REPORTS, write_json
from training.common.records import load_record
from training.data.sources import model_splits
from training.evaluation.source_eval import EvaluatedSet, evaluated_sets, source_reports

TRUST_REPORT = "trust_rules.json"
#: The issue's targets, per source: wrong and not flagged, and in-class crops flagged.
MAX_WRONG_NOT_FLAGGED = 0.005
MAX_FLAGGED = 0.03


def _validation(sets: list[tuple[EvaluatedSet, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each source's in-class validation crops: (top calibrated probability, right)."""
    return [
        (q.max(axis=1), q.argmax(axis=1) == s.labels)
        for s, q in sets
        if s.split == "val" and s.labels is not None
    ]


def catch_errors(
    validation: list[tuple[np.ndarray, np.ndarray]], most: float = MAX_WRONG_NOT_FLAGGED
) -> float:
    """The lowest threshold leaving at most ``most`` of every set wrong and not flagged (below: flagged)."""
    candidates = np.unique(np.concatenate([[0.0]] + [np.nextafter(c, 2.0) for c, _ in validation]))
    for t in candidates:
        if all(np.mean(~right & (confidence >= t)) <= most for confidence, right in validation):
            return float(t)
    return 1.0


def flag_budget(validation: list[tuple[np.ndarray, np.ndarray]], most: float = MAX_FLAGGED) -> float:
    """The highest threshold flagging at most ``most`` of every set."""
    candidates = np.unique(np.concatenate([[0.0]] + [c for c, _ in validation]))
    for t in candidates[::-1]:
        if all(np.mean(confidence < t) <= most for confidence, _ in validation):
            return float(t)
    return 0.0


def run_trust(data: str | Path, repository: str | Path, reports: str | Path = REPORTS) -> dict[str, Any]:
    """Choose the thresholds on validation, read every set with each; ``reports/trust_rules.json``."""
    files = locate(repository, DEFAULT_MODEL)
    record = load_record(files, reports)
    calibration = record["calibration"]
    spec = InputSpec.from_dict(record["preprocessing"])
    session = onnx_session(files.onnx)
    sets = evaluated_sets(model_splits(record, data), spec)
    # Each set through the network once; every rule reads the same probabilities.
    probabilities = {id(s.x): onnx_predict(session, s.x) for s in sets}
    calibrated = [(s, apply_temperature(probabilities[id(s.x)], calibration["temperature"])) for s in sets]
    validation = _validation(calibrated)
    thresholds = {
        "served": float(calibration["threshold"]),
        # Kept at the metadata's six decimals, rounded the way that still honours each target.
        "catch_errors": math.ceil(catch_errors(validation) * 1e6) / 1e6,
        "flag_budget": math.floor(flag_budget(validation) * 1e6) / 1e6,
    }
    report = {
        "model_version": f"{record['name']} {record['version']}",
        "temperature": calibration["temperature"],
        "targets": {"wrong_not_flagged": MAX_WRONG_NOT_FLAGGED, "flagged": MAX_FLAGGED},
        "chosen_on": "validation (every source's)",
        "both_met_on_validation": thresholds["catch_errors"] <= thresholds["flag_budget"],
        "rules": {
            name: {
                "threshold": t,
                "sources": source_reports(
                    lambda x: probabilities[id(x)], sets, calibration["temperature"], t
                ),
            }
            for name, t in thresholds.items()
        },
    }
    reports = Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    write_json(reports / TRUST_REPORT, report)
    return report


def summary(report: dict[str, Any]) -> str:
    lines = []
    for name, rule in report["rules"].items():
        cells = []
        for source, splits in rule["sources"].items():
            for split, r in splits.items():
                if "accuracy" in r:
                    wrong = r["wrong_not_flagged"]
                    cells.append(
                        f"{source} {split}: flagged {r['flagged']:.1%}, wrong not flagged {wrong:.1%}"
                    )
                else:
                    cells.append(f"{source} {split}: flagged {r['flagged']:.1%}")
        lines.append(f"{name} (threshold {rule['threshold']:.6f}): " + "; ".join(cells))
    met = (
        "both targets met on validation"
        if report["both_met_on_validation"]
        else "no threshold meets both targets on validation"
    )
    return "\n".join([*lines, met])
