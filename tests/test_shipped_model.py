"""The models in the repository (``models/<name>/<version>/``): as accurate, cheap and traceable as
their card (``reports/MODEL_CARD.md``) says.

Scored through the core the service runs (:mod:`lpr`: bytes -> decode ->
preprocess -> :class:`lpr.model.Model` -> calibrated ranking), so what is
tested is what users get.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lpr.confidence import rank
from lpr.hashing import sha256_file
from lpr.labels import DEVANAGARI, LABELS
from lpr.model import Model
from lpr.preprocessing import BORDER_BAND, INK_TRIM, WORKING_SIDE, preprocess_bytes
from lpr.repository import DEFAULT_MODEL, MODEL_FILE, REFERENCE_MODEL, SERVED_MODEL, ModelFiles, locate
from training.common.records import load_record

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
REPORTS = ROOT / "reports"
SHARED = ROOT.parent / "shared"
TEST_SPLIT = SHARED / "data" / "lpr" / "test"


@pytest.fixture(scope="module")
def shipped() -> ModelFiles:
    return locate(MODELS, DEFAULT_MODEL)


@pytest.fixture(scope="module")
def metadata(shipped: ModelFiles) -> dict:
    """The shipped version's full record (reports/records/), of which model.json is the served part."""
    return load_record(shipped)


@pytest.fixture(scope="module")
def model(shipped: ModelFiles) -> Model:
    return Model(shipped.onnx, shipped.metadata)


def _predict(model: Model, paths: list[Path]) -> list[dict]:
    """The service's answers (label, devanagari, confidence, ...) for files on disk."""
    spec = model.metadata.spec
    batch = np.stack([preprocess_bytes(p.read_bytes(), spec) for p in paths])
    return rank(model.run(batch), model.metadata)


def test_shipped_model_scores_at_least_97_5_percent_on_the_test_split(model: Model) -> None:
    """Far above the reference's 95.8 % (``models/lpr-reference``); outlier exposure cost 0.7 points."""
    paths = sorted(TEST_SPLIT.glob("*/*.jpg"))
    assert len(paths) == 403
    predictions = _predict(model, paths)
    correct = sum(pred["label"] == path.parent.name for pred, path in zip(predictions, paths, strict=True))
    accuracy = correct / len(paths)
    assert accuracy >= 0.975, f"test accuracy {accuracy:.4f} ({len(paths) - correct} errors)"


@pytest.mark.parametrize("name", [DEFAULT_MODEL, f"{DEFAULT_MODEL}-int8"])
def test_metadata_reports_the_accuracy_the_model_really_has(name: str, shipped: ModelFiles) -> None:
    """Each file's own test figures, the int8 variant's included."""
    files = locate(MODELS, name, shipped.version)
    model = Model(files.onnx, files.metadata)
    paths = sorted(TEST_SPLIT.glob("*/*.jpg"))
    predictions = _predict(model, paths)
    errors = sum(pred["label"] != path.parent.name for pred, path in zip(predictions, paths, strict=True))
    recorded = model.metadata.raw["test_metrics"]
    assert recorded["n"] == 403
    assert recorded["errors"] == errors


@pytest.mark.parametrize("name", ["1", "8", "ba", "pa"])
def test_every_colour_sample_is_classified_correctly(model: Model, name: str) -> None:
    (prediction,) = _predict(model, [SHARED / "samples" / f"{name}.png"])
    assert prediction["label"] == name
    assert prediction["devanagari"] == DEVANAGARI[name]


def test_metadata_hashes_match_the_shipped_files(shipped: ModelFiles, metadata: dict) -> None:
    assert metadata["onnx"]["file"] == MODEL_FILE
    assert metadata["onnx"]["sha256"] == sha256_file(shipped.onnx)
    assert len(metadata["dataset"]["sha256"]) == 64


def test_the_repository_holds_what_the_service_and_quantize_expect(
    shipped: ModelFiles, metadata: dict
) -> None:
    """The served name is the variant quantize chose; each version folder is named by its metadata."""
    from training.release.quantize import INT8_MODEL

    chosen = metadata["quantization"]["served_by_default"]
    assert {"int8": INT8_MODEL, "float32": DEFAULT_MODEL}[chosen] == SERVED_MODEL
    for path in sorted(MODELS.glob(f"*/*/{MODEL_FILE}")):
        meta = json.loads(path.with_name("model.json").read_text())
        assert (meta["name"], meta["version"]) == (path.parent.parent.name, path.parent.name), path
        assert meta["onnx"]["sha256"] == sha256_file(path), path
    variants = metadata["quantization"]
    for kind in ("float32", "int8"):
        assert (MODELS / variants[kind]["file"]).is_file(), "repository-relative, like the service reads it"
        assert variants[kind]["sha256"] == sha256_file(MODELS / variants[kind]["file"])


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_no_shipped_metadata_holds_an_absolute_path() -> None:
    """Metadata and records travel with the model (image, other checkouts): no path of the machine that
    made it."""
    found = sorted(MODELS.glob("*/*/model.json")) + sorted((ROOT / "reports" / "records").glob("*/*.json"))
    assert len(found) >= 6
    checkout = str(ROOT.resolve())
    for path in found:
        meta = json.loads(path.read_text())
        offending = [s for s in _strings(meta) if s.startswith("/") or checkout in s or ":\\" in s]
        assert not offending, (path, offending)
        assert "root" not in meta["dataset"], path


def test_the_recorded_data_is_found_beside_the_checkout(metadata: dict) -> None:
    """``calibrate`` and ``quantize`` find the data the metadata records and rebuild its splits."""
    from training.data.dataset import recorded_root
    from training.data.sources import model_splits

    assert recorded_root(metadata) == SHARED / "data"
    assert recorded_root(metadata, "/elsewhere") == Path("/elsewhere")
    splits = model_splits(metadata)
    assert len(splits.val) == metadata["dataset"]["sizes"]["val"] and len(splits.test) == 403


def test_metadata_records_every_source_so_a_retrain_reads_the_same_crops(metadata: dict) -> None:
    """Which sources, how many crops each, and their hashes: rebuilt from the files, they match."""
    from training.data.sources import model_splits

    recorded = metadata["dataset"]["sources"]
    assert [r["name"] for r in recorded] == list(metadata["training"]["recipe"]["sources"])
    assert {"lpr", "lpr-colour", "nnprs-chars"} <= {r["name"] for r in recorded}
    rebuilt = [s.record() for s in model_splits(metadata).sources]
    assert rebuilt == recorded, "the data beside the checkout is not what this model was trained on"
    nnprs = next(r for r in recorded if r["name"] == "nnprs-chars")
    assert nnprs["sizes"]["unknown_fit"] > 0 and nnprs["sizes"]["unknown_val"] > 0, (
        "real च, fitted and held out"
    )


def test_metadata_describes_labels_input_and_training(metadata: dict) -> None:
    assert metadata["labels"] == list(LABELS)
    assert metadata["devanagari"] == [DEVANAGARI[label] for label in LABELS]
    pre = metadata["preprocessing"]
    assert metadata["input"]["shape"] == [None, pre["size"], pre["size"], pre["channels"]]
    assert pre["working_side"] == WORKING_SIDE and pre["ink_trim"] == INK_TRIM
    assert pre["border_band"] == BORDER_BAND, "the shipped model must have seen today's polarity rule"
    assert isinstance(metadata["seed"], int)
    # A recipe of ours, trained with outlier exposure, exactly as RECIPES lists it: so
    # `lpr-train train` (whose default is SHIPPED) retrains this very model.
    from training.fitting.recipes import RECIPES, SHIPPED

    assert metadata["architecture"] == SHIPPED
    recipe = RECIPES[metadata["architecture"]]
    recorded = dict(metadata["training"]["recipe"])
    # A field of an experiment dropped since (glyphs cut from synthetic plates), off in this model.
    assert recorded.pop("plate_glyphs", 0) == 0
    assert recorded == json.loads(json.dumps(recipe.to_dict()))
    assert recipe.arch != "reference" and recipe.outlier_exposure > 0
    assert metadata["version"] == metadata["training"]["recipe"]["version"] == recipe.version
    assert metadata["parity"]["argmax_mismatches"] == 0 and metadata["parity"]["max_abs_diff"] <= 1e-4


def test_shipped_model_needs_a_tenth_of_the_reference_flops(metadata: dict) -> None:
    reference = load_record(locate(MODELS, REFERENCE_MODEL))
    assert reference["architecture"] == "reference"
    assert metadata["flops"] * 10 <= reference["flops"]


def test_model_card_shows_the_shipped_figures(metadata: dict) -> None:
    card = (REPORTS / "MODEL_CARD.md").read_text()
    assert metadata["onnx"]["sha256"] in card
    assert f"{metadata['test_metrics']['accuracy'] * 100:.2f} %" in card
    assert (REPORTS / "figures" / "test_errors.png").is_file()
    assert (REPORTS / "figures" / "samples_preprocessed.png").is_file()


def test_model_card_links_resolve() -> None:
    """Every relative link and image in the card points at a file (the card lives in reports/)."""
    import re

    card = REPORTS / "MODEL_CARD.md"
    targets = re.findall(r"\]\(([^)#]+)\)", card.read_text())
    assert any(t.startswith("figures/") for t in targets)
    for target in targets:
        if "://" not in target:
            assert (card.parent / target).is_file(), target
    for model_path in re.findall(r"`(models/[^`]+)`", card.read_text()):
        assert (ROOT / model_path).is_file(), model_path
