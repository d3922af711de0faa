"""A shipped version never changes: one writer makes a version folder, once, holding what serving reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SHARED

from lpr.char_finder import FINDER_MODEL
from lpr.labels import LABELS
from lpr.metadata import CALIBRATION_FIELDS, SERVING_FIELDS, ServedMetadata, VersionExistsError, write_version
from lpr.model import Model, ModelLoadError
from lpr.repository import DEFAULT_REPOSITORY, METADATA_FILE, MODEL_FILE, locate, versions
from training.cli import _parser, main
from training.common.records import RECORDS, record_path

SHIPPED = locate(DEFAULT_REPOSITORY, "lpr-default", "1.5.0")
#: Everything a served model.json may hold: serving settings, provenance, headline test figures.
SERVED_KEYS = {"name", "version", "architecture", "seed", "dataset", "onnx", "test_metrics"} | {
    key for fields in SERVING_FIELDS.values() for key in fields
}


def _metadata(name: str = "lpr-test") -> ServedMetadata:
    record = json.loads(SHIPPED.metadata.read_text())
    return ServedMetadata.from_record(record, name=name)


def test_a_version_is_written_whole_and_loads(tmp_path: Path) -> None:
    files = write_version(tmp_path, _metadata(), SHIPPED.onnx)
    assert sorted(p.name for p in files.folder.iterdir()) == [METADATA_FILE, MODEL_FILE]
    model = Model(files.onnx, files.metadata)
    assert model.metadata.model_version == "lpr-test 1.5.0"
    shipped = Model(SHIPPED.onnx, SHIPPED.metadata).metadata
    assert (model.metadata.temperature, model.metadata.plate_bar) == (shipped.temperature, shipped.plate_bar)
    assert [p.name for p in tmp_path.joinpath("lpr-test").iterdir()] == ["1.5.0"], "no partial folder left"


def test_shipping_over_an_existing_version_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    files = write_version(tmp_path, _metadata(), SHIPPED.onnx)
    before = {p.name: p.read_bytes() for p in files.folder.iterdir()}
    with pytest.raises(VersionExistsError, match="never changes"):
        write_version(tmp_path, _metadata(), SHIPPED.onnx)
    assert {p.name: p.read_bytes() for p in files.folder.iterdir()} == before


def test_metadata_the_reader_refuses_is_never_written(tmp_path: Path) -> None:
    metadata = _metadata()
    broken = ServedMetadata(**{**metadata.__dict__, "serving": {**metadata.serving, "labels": ["a"]}})
    with pytest.raises(ModelLoadError):
        write_version(tmp_path, broken, SHIPPED.onnx)
    assert versions(tmp_path, "lpr-test") == []
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "nothing half-written"


@pytest.mark.parametrize("folder", sorted(p.parent for p in DEFAULT_REPOSITORY.glob("*/*/model.json")))
def test_served_folders_hold_only_what_serving_reads(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [METADATA_FILE, MODEL_FILE]
    document = json.loads((folder / METADATA_FILE).read_text())
    assert set(document) <= SERVED_KEYS, set(document) - SERVED_KEYS
    if "calibration" in document:
        assert set(document["calibration"]) <= set(CALIBRATION_FIELDS)


#: The commands that write a new version (and are refused an existing one, above); every other command
#: that is given the repository only reads it.
SHIPPING = {"ship", "detector"}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _reading_commands(models: Path, reports: Path, run: Path, finder_run: Path) -> dict[str, list[str]]:
    """The cheapest real call of every command that takes ``--models`` and does not ship (``finder``
    and ``letters`` ship only with their ``ship`` action)."""
    data = str(SHARED / "data")
    where = ["--models", str(models), "--reports", str(reports)]
    letters_run = run.parent / "letters-run"
    return {
        "plates": ["plates", "--data", f"{data}/lpr", "--count", "4", *where],
        "photos": ["photos", "--data", data, *where],
        "real-plates": ["real-plates", "--data", data, *where],
        "trust": ["trust", "--data", data, *where],
        "card": ["card", "--default", str(run), *where],
        "finder": ["finder", "calibrate", "--run", str(finder_run), "--data", data, *where],
        "letters": ["letters", "train", "--run", str(letters_run), "--epochs", "1", "--data", data, *where],
    }


@pytest.mark.slow
def test_no_command_but_shipping_changes_a_shipped_version(tmp_path: Path) -> None:
    """Calibration and quantisation work on a run (they take no repository at all); evaluations and the
    card read the repository and write reports only. So a pinned version answers the same every day."""
    subcommands = next(a for a in _parser()._actions if a.dest == "command").choices
    takes_models = {
        name for name, sub in subcommands.items() if any("--models" in a.option_strings for a in sub._actions)
    }
    models, reports, run = tmp_path / "models", tmp_path / "reports", tmp_path / "run"
    shutil.copytree(DEFAULT_REPOSITORY, models)
    shutil.copytree(DEFAULT_REPOSITORY.parent / "reports" / RECORDS, reports / RECORDS)  # what they read
    run.mkdir()
    per_class = {label: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1} for label in LABELS}
    (run / "metrics.json").write_text(json.dumps({"per_class": per_class}))
    finder_run = tmp_path / "finder-run"  # the shipped finder as a run to calibrate again
    finder_run.mkdir()
    shipped_finder = locate(DEFAULT_REPOSITORY, FINDER_MODEL)
    shutil.copyfile(shipped_finder.onnx, finder_run / "model.onnx")
    shutil.copyfile(
        record_path(FINDER_MODEL, shipped_finder.version, DEFAULT_REPOSITORY.parent / "reports"),
        finder_run / "record.json",
    )
    commands = _reading_commands(models, reports, run, finder_run)
    assert takes_models - SHIPPING == set(commands), "a new command that takes --models: add it here"
    assert {"quantize", "calibrate"} <= set(subcommands) - takes_models
    before = _snapshot(models)
    for name, argv in commands.items():
        assert main(argv) == 0, name
        assert _snapshot(models) == before, f"lpr-train {name} changed the repository"
