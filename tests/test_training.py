"""The training package end to end on a small subset: train, evaluate, export, ship."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the training extra is not installed")

from lpr.labels import DEVANAGARI, LABELS
from training.data.dataset import open_dataset, stratified_split

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "lpr"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short epoch on 12 crops per class, then the full evaluate + export path.

    The recipe is ``default-oe``: ``default`` plus outlier exposure, so the one
    smoke run also covers generating, preprocessing and training on outliers.
    """
    from training.cli import main

    out = tmp_path_factory.mktemp("runs") / "smoke"
    assert (
        main(
            [
                "train",
                "--data",
                str(DATA),
                "--arch",
                "default-oe",
                "--out",
                str(out),
                "--epochs",
                "1",
                "--limit-per-class",
                "12",
            ]
        )
        == 0
    )
    return out


def test_split_layout_is_found_with_its_own_test_split() -> None:
    dataset = open_dataset(DATA)
    assert dataset.layout == "split"
    assert len(dataset.train) == 1599 and len(dataset.test) == 403
    assert set(dataset.train.counts()) == set(LABELS)
    assert all(n > 0 for n in dataset.test.counts().values())


def test_validation_split_is_seeded_stratified_and_disjoint() -> None:
    train = open_dataset(DATA).train
    fit_a, val_a = stratified_split(train, 0.3, seed=7)
    fit_b, val_b = stratified_split(train, 0.3, seed=7)
    _, val_c = stratified_split(train, 0.3, seed=8)
    assert val_a.paths == val_b.paths and fit_a.paths == fit_b.paths
    assert val_a.paths != val_c.paths
    assert not set(fit_a.paths) & set(val_a.paths)
    assert len(fit_a) + len(val_a) == len(train)
    for label, total in train.counts().items():
        assert abs(val_a.counts()[label] - 0.3 * total) <= 1


def test_colour_dataset_layout_with_devanagari_folders(tmp_path: Path) -> None:
    """The original dataset: one folder of class folders, any names users give them."""
    root = tmp_path / "images"
    for k, label in enumerate(LABELS):
        folder = root / (DEVANAGARI[label] if k % 2 else label)
        folder.mkdir(parents=True)
        for crop in sorted((DATA / "train" / label).glob("*.jpg"))[:10]:
            shutil.copy(crop, folder / crop.name.replace(".jpg", ".png"))
    dataset = open_dataset(tmp_path, seed=3)
    assert dataset.layout == "single"
    assert len(dataset.train) + len(dataset.test) == 120
    assert all(n == 2 for n in dataset.test.counts().values())
    assert not set(dataset.train.paths) & set(dataset.test.paths)
    assert len(dataset.sha256()) == 64


def test_unknown_layout_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    with pytest.raises(FileNotFoundError, match="class folders"):
        open_dataset(tmp_path)


def test_reference_model_is_the_published_design() -> None:
    import keras

    from training.fitting.models import build, count_flops
    from training.fitting.recipes import RECIPES

    model = build(RECIPES["reference"], steps_per_epoch=1)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert model.input_shape == (None, 128, 128, 3)
    assert [c.filters for c in convs] == [32, 64, 96, 128, 160, 192]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 5
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers) == 5
    assert isinstance(model.layers[-3], keras.layers.GlobalMaxPooling2D)
    assert model.layers[-2].units == 128 and model.layers[-1].units == 12
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    default = build(RECIPES["default"], steps_per_epoch=1)
    assert count_flops(default) * 10 <= count_flops(model)


def test_compact_model_folds_every_pixel_and_halves_the_compute() -> None:
    """``compact``'s stem is lossless space-to-depth (what TensorFlow calls it), at about half the FLOPs."""
    import keras
    import tensorflow as tf

    from training.fitting.models import build, count_flops, space_to_depth
    from training.fitting.recipes import RECIPES

    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    inputs = keras.Input((32, 32, 1))
    folded = keras.Model(inputs, space_to_depth(inputs))(x)
    assert np.array_equal(np.asarray(folded), tf.nn.space_to_depth(x, 2).numpy())
    compact = build(dataclasses.replace(RECIPES["default-oe"], arch="compact"), steps_per_epoch=1)
    assert compact.input_shape == (None, 32, 32, 1) and compact.output_shape == (None, 12)
    assert count_flops(compact) < 0.6 * count_flops(build(RECIPES["default-oe"], steps_per_epoch=1))


def test_smoke_run_writes_a_complete_run_folder(smoke_run: Path) -> None:
    for name in (
        "best.keras",
        "history.csv",
        "run.json",
        "metrics.json",
        "model.onnx",
        "model.json",
        "samples_per_class.png",
        "training_curves.png",
        "confusion_matrix.png",
        "test_predictions.png",
        "test_errors.png",
    ):
        assert (smoke_run / name).stat().st_size > 0, name
    run = json.loads((smoke_run / "run.json").read_text())
    assert run["seed"] == 1234 and len(run["dataset"]["sha256"]) == 64
    # 12 crops x 12 classes x (1 + 4 ink copies) fit inputs, 0.4 outliers per input.
    assert run["recipe"]["outlier_exposure"] == 0.4
    assert run["outlier_exposure"]["crops"] == 288 and run["outlier_exposure"]["seed"] == 1234 + 10_000
    assert "च" in run["outlier_exposure"]["held_out_symbols"]["devanagari"]
    assert "च" not in run["outlier_exposure"]["symbols"]["devanagari"]
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["n"] == 403
    assert np.asarray(metrics["confusion_matrix"]).sum() == 403
    assert 0.0 <= metrics["ece"] <= 1.0


def test_exported_onnx_matches_keras_on_the_test_split(smoke_run: Path) -> None:
    import keras
    import onnxruntime as ort

    from lpr.hashing import sha256_file
    from training.release.export import PARITY_TOLERANCE

    meta = json.loads((smoke_run / "model.json").read_text())
    assert meta["parity"]["n"] == 403 and meta["parity"]["argmax_mismatches"] == 0
    assert meta["parity"]["max_abs_diff"] <= PARITY_TOLERANCE
    assert meta["onnx"]["sha256"] == sha256_file(smoke_run / "model.onnx")

    session = ort.InferenceSession(str(smoke_run / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "image"
    assert not isinstance(session.get_inputs()[0].shape[0], int), "batch dimension must be dynamic"
    x = np.random.default_rng(0).random((5, 32, 32, 1), dtype=np.float32)
    onnx_probs = session.run(None, {"image": x})[0]
    keras_probs = keras.models.load_model(smoke_run / "best.keras").predict(x, verbose=0)
    assert onnx_probs.shape == (5, 12)
    assert np.abs(onnx_probs - keras_probs).max() <= PARITY_TOLERANCE


def test_parity_check_rejects_a_disagreeing_model() -> None:
    from training.release.export import ParityError, check_parity

    p = np.full((3, 12), 1 / 12, dtype=np.float32)
    p[:, 0] += 0.1
    q = p.copy()
    q[1, 0] -= 0.2
    with pytest.raises(ParityError):
        check_parity(p, q)


def test_exported_metadata_names_its_dataset_and_no_path_of_this_machine(smoke_run: Path) -> None:
    run = json.loads((smoke_run / "run.json").read_text())
    meta = json.loads((smoke_run / "model.json").read_text())
    assert run["dataset"]["root"] == str(DATA.resolve()), "the run folder keeps it, for lpr-train evaluate"
    assert "root" not in meta["dataset"] and meta["dataset"]["name"] == "lpr"
    assert str(Path.cwd()) not in json.dumps(meta) and str(SHARED.resolve()) not in json.dumps(meta)
    assert meta["onnx"]["file"] == "model.onnx"


def test_ship_writes_new_versions_once_with_their_records(smoke_run: Path, tmp_path: Path) -> None:
    """A run and its int8 copy ship as two new versions holding what serving reads; the full records go
    to reports/records; an uncalibrated run is refused unless asked; a shipped version is never replaced."""
    import shutil

    from lpr.hashing import sha256_file
    from lpr.model import Model
    from lpr.repository import locate
    from training.common.records import load_record
    from training.release.ship import NotCalibratedError, VersionExistsError, ship

    run, repository, reports = tmp_path / "run", tmp_path / "models", tmp_path / "reports"
    shutil.copytree(smoke_run, run)
    record = json.loads((run / "model.json").read_text())
    (run / "int8").mkdir()  # stands in for quantize's copy: same graph, its own record
    shutil.copyfile(run / "model.onnx", run / "int8" / "model.onnx")
    (run / "int8" / "model.json").write_text(json.dumps({**record, "name": "lpr-default-int8"}))
    with pytest.raises(NotCalibratedError, match="lpr-train calibrate --run"):
        ship(run, repository, name="lpr-smoke", reports=reports)
    assert not repository.exists() and not reports.exists(), "nothing is written unless all of it may be"

    written = ship(run, repository, name="lpr-smoke", uncalibrated=True, reports=reports)
    version = record["version"]
    for name in ("lpr-smoke", "lpr-smoke-int8"):
        files = locate(repository, name)
        assert files.version == version and files.folder == repository / name / version
        meta = json.loads(files.metadata.read_text())
        assert meta["name"] == name and meta["onnx"]["file"] == "model.onnx"
        assert meta["onnx"]["sha256"] == sha256_file(files.onnx)
        assert "root" not in meta["dataset"] and meta["dataset"]["name"] == "lpr"
        assert "training" not in meta and "parity" not in meta, "records stay out of the served folder"
        assert Model(files.onnx, files.metadata).metadata.model_version == f"{name} {version}"
        full = load_record(files, reports)
        assert full["training"] == record["training"] and full["parity"] == record["parity"]
        assert full["name"] == name and "root" not in full["dataset"]
    # Figures are reports, not model files: reports/<name>/figures for a name other than the two shipped.
    assert reports / "lpr-smoke" / "figures" / "test_errors.png" in written
    assert not list(repository.rglob("*.png"))

    files = locate(repository, "lpr-smoke")
    files.onnx.write_bytes(b"edited")
    with pytest.raises(VersionExistsError, match="never changes"):
        ship(run, repository, name="lpr-smoke", uncalibrated=True, reports=reports)
    assert files.onnx.read_bytes() == b"edited"


def test_figures_of_the_shipped_names_keep_their_places(tmp_path: Path) -> None:
    from training.common.outputs import figures_dir

    assert figures_dir(tmp_path, "lpr-default") == tmp_path / "figures"
    assert figures_dir(tmp_path, "lpr-reference") == tmp_path / "reference" / "figures"
    assert figures_dir(tmp_path, "lpr-other") == tmp_path / "lpr-other" / "figures"


def test_outlier_exposure_recipe_is_default_plus_outliers_only() -> None:
    """``default`` (model 1.0.0) stays reproducible; ``default-oe`` adds outliers, frame strips, epochs."""

    from training.fitting.recipes import RECIPES

    assert RECIPES["default"].outlier_exposure == 0
    assert RECIPES["default-oe"].outlier_exposure > 0
    assert RECIPES["default-oe"].version != RECIPES["default"].version
    same = dataclasses.replace(
        RECIPES["default-oe"],
        outlier_exposure=0,
        frame_bars=0,
        epochs=RECIPES["default"].epochs,
        version=RECIPES["default"].version,
    )
    assert same == RECIPES["default"]


def test_compact_ink16_is_compact_oe_with_more_ink_variants_only() -> None:
    """1.3.0's recipe stays reproducible; 1.4.0 changes the variant count and nothing else."""
    from training.fitting.recipes import RECIPES

    newer, older = RECIPES["compact-ink16"], RECIPES["compact-oe"]
    assert newer.ink_copies == 4 * older.ink_copies
    assert dataclasses.replace(newer, ink_copies=older.ink_copies, version=older.version) == older


def test_the_shipped_recipe_is_compact_ink16s_network_on_every_source() -> None:
    """1.5.0 keeps 1.4.0's network (so its speed) and reads the three real sources, real च included."""
    from training.data.sources import SOURCES
    from training.fitting.recipes import RECIPES, SHIPPED

    shipped, older = RECIPES[SHIPPED], RECIPES["compact-ink16"]
    assert (shipped.arch, shipped.stages, shipped.input) == (older.arch, older.stages, older.input)
    assert set(shipped.sources) == set(SOURCES) and shipped.sources[0] == "lpr", "lpr/test is the headline"
    assert shipped.unknown_copies >= 0, "the real च crops are fitted towards no class"
    assert not older.sources and older.unknown_copies < 0, "1.4.0 stays a one-dataset recipe"


def test_the_model_card_names_characters_misread_only_on_a_plate() -> None:
    """The gap between reading crops alone and reading plates is itemised, crop by crop."""
    from training.reports.plates_section import plate_only_note

    plates = {
        "crop_by_crop": {"crops_misread": ["0/86.jpg"]},
        "errors": [
            {  # 8/110 is read right alone, so its misreading here is the plate's doing; 0/86 is not
                "truth": [["ba", "8", "pa"], ["0"]],
                "read": [["ba", "6", "pa"], ["2"]],
                "segmented_right": True,
                "sources": [["ba/1.jpg", "8/110.jpg", "pa/2.jpg"], ["0/86.jpg"]],
            },
            {  # mis-segmented: the segmentation figure counts it, not this note
                "truth": [["ba", "3", "pa", "1"]],
                "read": [["ba", "pa", "1"]],
                "segmented_right": False,
                "sources": [["ba/1.jpg", "3/5.jpg", "pa/2.jpg", "1/3.jpg"]],
            },
        ],
    }
    note = plate_only_note(plates)
    assert "1 character is misread only on a plate" in note
    assert "`8/110.jpg` 1x" in note
    assert "0/86" not in note and "3/5" not in note
    plates["errors"] = plates["errors"][1:]
    assert plate_only_note(plates) == ""


def test_the_cli_offers_every_recipe_and_trains_the_shipped_one_by_default() -> None:
    from training.cli import _parser
    from training.fitting.recipes import RECIPES, SHIPPED

    train = _parser()._subparsers._group_actions[0].choices["train"]
    arch = next(action for action in train._actions if action.dest == "arch")
    assert list(arch.choices) == list(RECIPES)
    assert _parser().parse_args(["train", "--data", "d"]).arch == SHIPPED
    # Dropped experiments (lost on validation, never shipped) are gone, not options.
    assert "small-oe" not in RECIPES and "plate_glyphs" not in RECIPES[SHIPPED].to_dict()


def test_the_cli_help_does_not_import_keras() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from training.cli import _parser; _parser().format_help(); "
        "sys.exit(bool({'keras', 'tensorflow'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_make_docker_and_compose_train_the_shipped_recipe_by_default() -> None:
    """None of them names a recipe: they take the CLI's default, the shipped one, from one place."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    makefile = (root / "Makefile").read_text()
    train_line = makefile.split("\ntrain:", 1)[1].splitlines()[1]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]["train"]["command"]
    dockerfile_cmd = next(
        line for line in (root / "Dockerfile").read_text().splitlines() if line.startswith('CMD ["train"')
    )
    for command in (train_line, " ".join(compose), dockerfile_cmd):
        assert "train" in command and "--data" in command, command
        assert "--arch" not in command, command


def test_outliers_are_appended_with_uniform_targets_the_loss_wants_matched() -> None:
    import keras

    from training.fitting.outlier_exposure import with_outliers
    from training.fitting.recipes import RECIPES

    x_fit = np.zeros((3, 32, 32, 1), np.float32)
    x_out = np.ones((2, 32, 32, 1), np.float32)
    x, targets = with_outliers(x_fit, np.array([0, 5, 11]), x_out)
    assert x.shape == (5, 32, 32, 1) and (x[3:] == 1).all()
    assert (targets[:3].argmax(axis=1) == [0, 5, 11]).all() and (targets[:3].max(axis=1) == 1).all()
    assert np.allclose(targets[3:], 1 / 12) and np.allclose(targets.sum(axis=1), 1)
    # With the recipe's label smoothing, an outlier's loss is lowest for a flat answer.
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=RECIPES["default-oe"].label_smoothing)
    flat = np.full((1, 12), 1 / 12, np.float32)
    confident = np.full((1, 12), 0.01 / 11, np.float32)
    confident[0, 3] = 0.99
    assert float(loss(targets[3:4], flat)) < float(loss(targets[3:4], confident))


def test_outliers_never_show_the_held_out_symbols_or_fonts() -> None:
    from training.synthesis.ood import (
        FULL,
        HELD_OUT_FONTS,
        LOOKALIKES,
        generate,
        holdout_split,
        missing_fonts,
    )

    training, held_out = holdout_split()
    assert holdout_split() == (training, held_out), "the split is fixed, not random"
    for kind in ("devanagari", "latin"):
        assert not set(training.symbols[kind]) & set(held_out.symbols[kind])
        assert set(training.symbols[kind]) | set(held_out.symbols[kind]) == set(FULL.symbols[kind])
        assert not set(training.fonts[kind]) & set(HELD_OUT_FONTS[kind])
        assert not set(training.symbols[kind]) & LOOKALIKES
    assert "च" in held_out.symbols["devanagari"] and "O" in held_out.symbols["latin"]
    if missing_fonts():
        pytest.skip("out-of-class crops need the Debian fonts")
    crops = list(generate(60, seed=3, vocabulary=training))
    glyphs = [c for c in crops if c.kind in ("devanagari", "latin")]
    assert glyphs and all(c.symbol in training.symbols[c.kind] for c in glyphs)
    assert all(c.font in training.fonts[c.kind] for c in glyphs)


def test_hand_painted_letters_keep_their_shape_but_lose_the_fonts_even_stroke() -> None:
    """Plate letters are brushed: the look bends and re-weights a glyph, seeded, without erasing it."""
    from training.synthesis.ood import FONTS, _render_glyph, hand_painted, missing_fonts

    if missing_fonts():
        pytest.skip("rendering needs the Debian fonts")
    glyph = _render_glyph("च", FONTS["devanagari"][0][0], np.random.default_rng(0))
    painted = hand_painted(glyph, np.random.default_rng(1))
    assert painted.shape == glyph.shape and painted.dtype == np.uint8
    assert np.array_equal(painted, hand_painted(glyph, np.random.default_rng(1))), "seeded"
    assert not np.array_equal(painted, hand_painted(glyph, np.random.default_rng(2)))
    before, after = glyph > 127, painted > 127
    overlap = (before & after).sum() / (before | after).sum()
    assert 0.3 < overlap < 0.95, f"the letter must change but stay itself (IoU {overlap:.2f})"
