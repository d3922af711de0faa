"""Calibrated confidences and ``unknown`` answers for crops that are none of the twelve symbols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TEST_CROPS
from fastapi.testclient import TestClient

from lpr.confidence import apply_temperature, rank, unknown
from lpr.labels import LABELS
from lpr.model import ModelMetadata
from lpr.repository import DEFAULT_MODEL, SERVED_MODEL, locate
from service.config import Settings
from training.common.records import load_record
from training.evaluation.calibration import OOD_SEED, choose_threshold, fit_temperature, nll
from training.synthesis.ood import FONT_PACKAGES, generate, holdout_split, missing_fonts, render

needs_fonts = pytest.mark.skipif(
    bool(missing_fonts()),
    reason=f"out-of-class crops need the Debian fonts: apt-get install -y {' '.join(FONT_PACKAGES)}",
)

#: Measured with the served model (trained with outlier exposure) on 400 crops of the
#: held-out half (symbols and fonts it never trained on): 84 % of all out-of-class crops,
#: 94 % of other Devanagari letters, every blank. Floors leave a margin for float noise.
OOD_FLAGGED_FLOOR = 0.78
DEVANAGARI_FLAGGED_FLOOR = 0.85
BLANK_FLAGGED_FLOOR = 0.95


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_temperature_fit_recovers_a_known_temperature(true_temperature: float) -> None:
    """Labels drawn from softmax(z / T): the fit on softmax(z) must find that T."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, size=(6000, 12))
    truth = _softmax(logits / true_temperature)
    labels = np.array([rng.choice(12, p=row) for row in truth])
    fitted = fit_temperature(_softmax(logits).astype(np.float32), labels)
    assert fitted == pytest.approx(true_temperature, rel=0.08)
    assert nll(_softmax(logits), labels, fitted) < nll(_softmax(logits), labels, 1.0)


def test_temperature_is_softmax_of_scaled_log_probabilities_and_keeps_the_answer() -> None:
    rng = np.random.default_rng(1)
    p = _softmax(rng.normal(0, 4, size=(50, 12))).astype(np.float32)
    p[0] = 0.0
    p[0, 3] = 1.0  # float32 softmax can give exact zeros
    for t in (0.3, 0.61, 1.0, 2.5):
        q = apply_temperature(p, t)
        assert np.isfinite(q).all()
        assert q.sum(axis=1) == pytest.approx(np.ones(50), abs=1e-5)
        assert (q.argmax(axis=1) == p.argmax(axis=1)).all()
        expected = _softmax(np.log(np.maximum(p[1:].astype(np.float64), 1e-30)) / t)
        assert q[1:] == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError):
        apply_temperature(p, 0.0)


def test_threshold_flags_at_most_the_allowed_share() -> None:
    confidence = np.linspace(0.1, 1.0, 400)
    t = choose_threshold(confidence, 0.005)
    assert np.mean(confidence < t) <= 0.005
    assert np.mean(confidence <= t) > 0.005  # the largest such threshold


@pytest.mark.parametrize("name", [DEFAULT_MODEL, f"{DEFAULT_MODEL}-int8"])
def test_shipped_metadata_records_calibration_fitted_on_validation(name: str) -> None:
    """Both files of the newest shipped version, each with its own fit."""
    repository = Path(__file__).resolve().parents[1] / "models"
    version = locate(repository, DEFAULT_MODEL).version
    meta = load_record(locate(repository, name, version))
    block = meta["calibration"]
    assert block["fitted_on"] == "validation"
    assert block["validation_size"] == meta["dataset"]["sizes"]["val"]
    assert 0.0 < block["temperature"] < 20.0 and 0.0 < block["threshold"] < 1.0
    assert block["ece_test_after"] < block["ece_test_before"]
    assert block["in_class_test_flagged"] < 0.01
    assert set(block["ood"]["per_kind"]) == {"devanagari", "latin", "blank", "smudge"}


def test_metadata_without_calibration_still_loads_and_flags_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    """Models shipped before calibration keep working: T = 1, threshold 0."""
    raw = json.loads(settings.model_files()[1].read_text())
    raw.pop("calibration", None)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(raw))
    meta = ModelMetadata.load(path)
    assert (meta.temperature, meta.threshold) == (1.0, 0.0)
    p = np.full((1, len(LABELS)), 1.0 / len(LABELS), dtype=np.float32)  # as unsure as it gets
    (answer,) = rank(p, meta)
    assert answer["unknown"] is False
    assert answer["confidence"] == pytest.approx(1.0 / len(LABELS), abs=1e-6)


def _batch(client: TestClient, payloads: list[bytes]) -> list[dict]:
    results: list[dict] = []
    for start in range(0, len(payloads), 64):
        files = [
            ("files", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(payloads[start : start + 64])
        ]
        response = client.post("/predict/batch", files=files)
        assert response.status_code == 200, response.text
        results.extend(response.json()["results"])
    assert all(r["status"] == "ok" for r in results)
    return results


def test_in_class_test_crops_are_rarely_flagged(client: TestClient, settings: Settings) -> None:
    """Under 1 % of the real test split comes back ``unknown`` through the API, as the card says."""
    paths = sorted(TEST_CROPS.glob("*/*.jpg"))
    results = _batch(client, [p.read_bytes() for p in paths])
    flagged = np.mean([r["unknown"] for r in results])
    assert flagged < 0.01
    recorded = load_record(locate(ROOT / "models", SERVED_MODEL))["calibration"]["in_class_test_flagged"]
    assert flagged == pytest.approx(recorded, abs=1.5 / len(paths))
    assert all(isinstance(r["unknown"], bool) for r in results)


@needs_fonts
def test_out_of_class_crops_are_flagged_as_often_as_measured(client: TestClient) -> None:
    """Symbols and fonts the model never saw in training: the share it flags generalises."""
    _, held_out = holdout_split()
    crops = list(generate(400, seed=OOD_SEED, vocabulary=held_out))
    results = _batch(client, [c.data for c in crops])
    flags = np.array([r["unknown"] for r in results])
    kinds = np.array([c.kind for c in crops])
    assert flags.mean() >= OOD_FLAGGED_FLOOR
    assert flags[kinds == "devanagari"].mean() >= DEVANAGARI_FLAGGED_FLOOR
    assert flags[kinds == "blank"].mean() >= BLANK_FLAGGED_FLOOR
    black = [r for r, c in zip(results, crops, strict=True) if c.style == "black"]
    assert black and all(r["unknown"] for r in black)  # nothing painted: never a confident class


@needs_fonts
def test_predict_marks_another_letter_unknown_and_keeps_its_best_guess(client: TestClient) -> None:
    """A rendered द (not a plate symbol) is answered 200 with ``unknown: true`` and a low confidence."""
    response = client.post("/predict", files={"file": ("da.jpg", render("द", seed=7), "image/jpeg")})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["unknown"] is True
    assert answer["label"] in LABELS
    threshold = client.get("/model").json()["calibration"]["threshold"]
    assert answer["confidence"] < threshold


def test_real_colour_samples_are_not_flagged(client: TestClient, samples: dict[str, bytes]) -> None:
    for name, data in samples.items():
        answer = client.post("/predict", files={"file": (f"{name}.png", data, "image/png")}).json()
        assert answer["unknown"] is False, name


@needs_fonts
def test_cha_is_flagged_unknown(client: TestClient) -> None:
    """The issue's own example, held out of outlier-exposure training: not a confident प any more."""
    results = _batch(client, [render("च", seed=s) for s in range(10)])
    assert np.mean([r["unknown"] for r in results]) >= 0.5


def test_unknown_rule_is_strictly_below_threshold() -> None:
    q = np.array([[0.4, 0.6], [0.7, 0.3]])
    assert unknown(q, 0.6).tolist() == [False, False]
    assert unknown(q, 0.65).tolist() == [True, False]


def test_calibrate_writes_the_run_and_its_int8_copy_never_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lpr-train calibrate --run`` fits the run's model and the int8 copy ``quantize`` put beside it,
    each on its own, before shipping: a shipped version is never rewritten (the fit is stubbed out)."""
    import shutil

    from training.evaluation import calibration

    repository = ROOT / "models"
    version = locate(repository, DEFAULT_MODEL).version
    run = tmp_path / "run"
    for name, folder in ((DEFAULT_MODEL, run), (f"{DEFAULT_MODEL}-int8", run / "int8")):
        files = locate(repository, name, version)
        folder.mkdir(parents=True)
        shutil.copyfile(files.onnx, folder / "model.onnx")
        (folder / "model.json").write_text(json.dumps(load_record(files)))
    before = {p: p.read_bytes() for p in repository.rglob("*") if p.is_file()}
    seen: list[Path] = []
    monkeypatch.setattr(calibration.EvaluationInputs, "build", classmethod(lambda cls, *a, **k: None))

    def fake_fit(onnx_path: Path, inputs: object) -> dict:
        seen.append(onnx_path)
        return {"temperature": 0.5, "ood": {}}

    monkeypatch.setattr(calibration, "calibrate_model", fake_fit)
    monkeypatch.setattr(calibration, "fit_plate_threshold", lambda *a, **k: {"plate_threshold": 0.9})
    results = calibration.calibrate_run(run, data=tmp_path / "unused")
    assert sorted(results) == [f"{DEFAULT_MODEL} {version}", f"{DEFAULT_MODEL}-int8 {version}"]
    assert seen == [run / "model.onnx", run / "int8" / "model.onnx"]
    for folder in (run, run / "int8"):
        meta = json.loads((folder / "model.json").read_text())
        assert meta["calibration"]["temperature"] == 0.5 and "root" not in meta["dataset"]
        assert meta["calibration"]["plate_threshold"] == 0.9
    assert {p: p.read_bytes() for p in repository.rglob("*") if p.is_file()} == before


def test_calibrate_prints_every_source_of_a_multi_source_model() -> None:
    """``lpr-train calibrate`` prints each source's figures, the ones the real-variety issue asks for."""
    from training.evaluation.calibration import summary

    block = load_record(locate(ROOT / "models", DEFAULT_MODEL))["calibration"]
    printed = summary(block).splitlines()
    for source, sets in block["sources"].items():
        for split, r in sets.items():
            (line,) = [line for line in printed if line.strip().startswith(f"{source} {split}:")]
            figure = (
                f"{r['flagged']:.1%} of {r['n']} flagged"
                if split == "unknown_val"
                else f"{r['accuracy']:.2%}"
            )
            assert figure in line and (split == "unknown_val" or f"{r['wrong_not_flagged']:.2%}" in line)


def test_the_plate_bar_is_the_lowest_that_keeps_confident_and_wrong_plates_rare() -> None:
    from training.evaluation.calibration import choose_plate_threshold

    # Ten confident plates; the wrong ones' least probable characters are 0.90 and 0.96.
    worst = np.array([0.99, 0.98, 0.90, 0.97, 0.96, 0.995, 0.93, 0.999, 0.985, 0.91])
    right = np.array([True, True, False, True, False, True, True, True, True, True])
    confident = np.ones(10, bool)
    assert choose_plate_threshold(confident, worst, right, max_share=0.1) == pytest.approx(0.91)
    assert choose_plate_threshold(confident, worst, right, max_share=0.0) == pytest.approx(0.97)
    # Plates already doubtful count for nothing: with both wrong ones doubtful, no bar is needed.
    assert choose_plate_threshold(right, worst, right, max_share=0.0) == 0.0
