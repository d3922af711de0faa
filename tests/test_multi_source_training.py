"""A multi-source recipe end to end on a tiny data home: train, evaluate, export, leave one source out.

The data home is synthetic (``test_sources.synthetic_home``: the three sources'
layouts, real-looking च crops included), so what is tested is the plumbing a
user relies on, not a figure: the run records every source, the real च crops
are fitted towards no class, and the leave-one-source-out table reads each
origin with a model that never saw it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="the training extra is not installed")

from test_sources import synthetic_home

from training.fitting.recipes import RECIPES, SHIPPED


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_home(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def multi_run(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.cli import main

    out = tmp_path_factory.mktemp("runs") / "multi"
    assert main(["train", "--data", str(home), "--arch", SHIPPED, "--out", str(out), "--epochs", "1"]) == 0
    return out


def test_a_multi_source_run_records_every_source_and_fits_the_real_unknowns(multi_run: Path) -> None:
    run = json.loads((multi_run / "run.json").read_text())
    recipe = RECIPES[SHIPPED]
    dataset = run["dataset"]
    assert dataset["layout"] == "sources" and [s["name"] for s in dataset["sources"]] == list(recipe.sources)
    nnprs = dataset["sources"][-1]
    assert nnprs["sizes"]["unknown_fit"] > 0 and nnprs["sizes"]["unknown_val"] > 0
    # Every real च crop fitted, with its re-binarised variants, beside the rendered outliers.
    assert run["outlier_exposure"]["real_crops"] == nnprs["sizes"]["unknown_fit"] * (
        recipe.unknown_copies + 1
    )
    assert dataset["sizes"]["val"] == sum(s["sizes"]["val"] for s in dataset["sources"])
    assert dataset["sizes"]["test"] == dataset["sources"][0]["sizes"]["test"], "lpr/test is the headline"
    # The exported model was scored on the first source's test split.
    meta = json.loads((multi_run / "model.json").read_text())
    assert meta["test_metrics"]["n"] == dataset["sizes"]["test"]
    assert "root" not in meta["dataset"] and meta["dataset"]["sources"] == dataset["sources"]


def tiny_loso(home: Path, tmp_path: Path) -> dict:
    """Leave-one-source-out of the shipped recipe cut to one epoch without rendered outliers."""
    from training.evaluation.loso import leave_one_source_out

    RECIPES["tiny-loso"] = dataclasses.replace(RECIPES[SHIPPED], outlier_exposure=0.0, epochs=1)
    try:
        return leave_one_source_out(home, tmp_path / "runs", "tiny-loso", reports=tmp_path)
    finally:
        del RECIPES["tiny-loso"]


def test_leave_one_source_out_reads_each_origin_with_a_model_that_never_saw_it(
    home: Path, tmp_path: Path
) -> None:
    report = tiny_loso(home, tmp_path)
    assert json.loads((tmp_path / "loso.json").read_text()) == report
    rows = {row["left_out"]: row for row in report["rows"]}
    assert set(rows) == {"lpr", "nnprs-chars"}, "the two LPR forms are one origin"
    without_lpr = rows["lpr"]
    assert without_lpr["trained_on"] == ["nnprs-chars"]
    for name in ("lpr", "lpr-colour"):
        assert without_lpr["scores"][name] | {"seen": False, "set": "test"} == without_lpr["scores"][name]
    assert (
        without_lpr["scores"]["nnprs-chars"]["set"] == "val" and without_lpr["scores"]["nnprs-chars"]["seen"]
    )
    unseen = rows["nnprs-chars"]["scores"]["nnprs-chars"]
    assert unseen["set"] == "all" and not unseen["seen"] and unseen["n"] == 20, "every crop of the twelve"
    # A second call reuses the runs instead of training again.
    before = {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("best.keras")}
    tiny_loso(home, tmp_path)
    assert before == {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("best.keras")}
