"""What one "unknown" threshold can promise: chosen on validation, per source, and honest about it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import SHARED

from training.cli import main
from training.common.outputs import REPORTS, read_json
from training.common.records import RECORDS
from training.evaluation.trust_rules import MAX_FLAGGED, MAX_WRONG_NOT_FLAGGED, catch_errors, flag_budget


def test_catch_errors_is_the_lowest_threshold_that_flags_every_sets_errors() -> None:
    # Two sets: errors at 0.7 and 0.9; right answers from 0.5 up.
    a = (np.array([0.5, 0.7, 0.95, 0.99]), np.array([True, False, True, True]))
    b = (np.array([0.6, 0.9, 0.97]), np.array([True, False, True]))
    t = catch_errors([a, b], most=0.0)
    assert 0.9 < t <= 0.95  # both errors below it, no right answer above it flagged needlessly
    assert catch_errors([a], most=0.25) <= 0.5 + 1e-9  # one error of four may pass: nothing needs flagging


def test_flag_budget_is_the_highest_threshold_within_every_sets_budget() -> None:
    a = (np.linspace(0.1, 1.0, 100), np.ones(100, bool))
    b = (np.linspace(0.5, 1.0, 50), np.ones(50, bool))
    t = flag_budget([a, b], most=0.04)
    assert all(np.mean(c < t) <= 0.04 for c, _ in (a, b))
    # The next confidence above it would flag more than the budget somewhere: t is the highest.
    higher = min(c for c in np.concatenate([a[0], b[0]]) if c > t)
    assert any(np.mean(c < higher) > 0.04 for c, _ in (a, b))


def test_lpr_train_trust_chooses_on_validation_and_reports_every_source(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / RECORDS).symlink_to((REPORTS / RECORDS).resolve())
    assert main(["trust", "--data", str(SHARED / "data"), "--reports", str(reports)]) == 0
    report = read_json(reports / "trust_rules.json")
    rules = report["rules"]
    assert set(rules) == {"served", "catch_errors", "flag_budget"}
    for name, target, key in (
        ("catch_errors", MAX_WRONG_NOT_FLAGGED, "wrong_not_flagged"),
        ("flag_budget", MAX_FLAGGED, "flagged"),
    ):
        # The target holds on every source's validation crops, where the threshold was chosen.
        vals = [splits["val"] for splits in rules[name]["sources"].values() if "val" in splits]
        assert vals and all(v[key] <= target for v in vals)
    assert report["both_met_on_validation"] == (
        rules["catch_errors"]["threshold"] <= rules["flag_budget"]["threshold"]
    )
    # Real च (outside the twelve) is reported under every rule.
    assert all(r["sources"]["nnprs-chars"]["unknown_val"]["n"] > 0 for r in rules.values())
