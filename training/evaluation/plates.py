"""Whole plates read by the service's plate reader and scored: ``lpr-train plates``.

The dataset only has single-character crops, so the plate reader is measured
on plates composed from the *test* crops (:mod:`training.synthesis.plates`):
every character on a plate is a real crop no model trained on. Each plate is
read as ``POST /read-plate`` reads a tight crop: the served reader
(:func:`served_plate_reader`), with a grey margin, as it is and upside down
in one pass, the better reading kept (:func:`lpr.photo_reader.read_tight`).

NumPy, Pillow, SciPy and ONNX Runtime only (the figure needs matplotlib, imported lazily).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lpr.char_finder import FINDER_MODEL, CharFinder
from lpr.labels import LABELS
from lpr.letter_namer import LETTER_MODEL, LetterNamer
from lpr.model import Model
from lpr.photo_reader import read_tight
from lpr.plate_reader import UNREADABLE, ReadsCharacters, decode
from lpr.preprocessing import load_file
from lpr.readers import FinderReader, PlateReader, served_reader
from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, METADATA_FILE, MODEL_FILE, ModelFiles, locate
from training.common.outputs import (
    PLATES_EVAL,
    PLATES_EVAL_FOREIGN,
    PLATES_EVAL_VAL,
    PLATES_FIGURE,
    REPORTS,
    figures_dir,
    write_json,
)
from training.common.records import load_record
from training.evaluation.foreign_letters import as_truth, foreign_reads, foreign_summary, in_rows, letter_id
from training.release.quantize import INT8_MODEL
from training.synthesis.plates import (
    DEFAULT_COUNT,
    DEFAULT_SEED,
    Plate,
    crops_in,
    generate_plates,
    validation_crops,
)


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two label sequences (substitution, insertion, deletion cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _score(plates: Sequence[Plate], readings: Sequence[list[list[str]]]) -> dict[str, Any]:
    """Whole-plate and character accuracy of ``readings`` against the plates' truth.

    Character accuracy is ``1 - edit distance / true characters`` over the plate's
    labels in reading order (rows concatenated): a missed, split or spurious
    character costs one error, a misread one costs one, and the other characters
    still count. A plate is read correctly only if every row matches exactly.
    """
    n_chars = errors = correct = 0
    for plate, read in zip(plates, readings, strict=True):
        truth = [label for row in plate.rows for label in row]
        n_chars += len(truth)
        errors += edit_distance(truth, [label for row in read for label in row])
        correct += read == plate.rows
    return {
        "whole_plate_accuracy": round(correct / len(plates), 4),
        "character_accuracy": round(1 - errors / n_chars, 4),
        "character_errors": errors,
    }


def evaluate_plates(
    plates: Sequence[Plate], reader: PlateReader, names: ReadsCharacters
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read every plate with ``reader`` as the service reads a tight crop (both ways up, in one pass).

    Scores are given with the plate format (what the service answers) and
    without it (the characters found and their names alone, the same
    probabilities decoded without the format; ``names`` gives them meaning).
    """
    per_plate: list[dict[str, Any]] = []
    raw_readings: list[list[list[str]]] = []
    seconds: list[float] = []
    for index, plate in enumerate(plates):
        started = time.perf_counter()
        _, reading = read_tight(plate.image, reader)
        read = as_truth(plate, reading.labels)
        seconds.append(time.perf_counter() - started)
        raw = decode(reading.segmentation, reading.probabilities, names, use_grammar=False)
        raw_readings.append(raw.labels)
        per_plate.append(
            {
                "index": index,
                "truth": plate.rows,
                "read": read,
                "correct": read == plate.rows,
                "confident": reading.confident,
                # The reader's best guess, "?" only where it holds a letter the model cannot read.
                "best_reading_right": bool(reading.readings)
                and as_truth(plate, in_rows(reading.readings[0].labels, plate.rows)) == plate.rows,
                "foreign": [
                    {
                        **letter,
                        "flagged": read_char == UNREADABLE,
                        "named": read_char == letter_id(letter["letter"]),
                    }
                    for letter, read_char in foreign_reads(plate, reading)
                ],
                "segmented_right": [len(r) for r in read] == [len(r) for r in plate.rows],
                "boxes": [list(c.box) for c in reading.characters],
                "sources": plate.sources,
                "params": plate.params,
            }
        )
    readings = [p["read"] for p in per_plate]
    without = _score(plates, raw_readings)
    summary = {
        "plates": len(per_plate),
        "characters": sum(len(row) for plate in plates for row in plate.rows),
        **_score(plates, readings),
        "segmentation_accuracy": round(sum(p["segmented_right"] for p in per_plate) / len(per_plate), 4),
        "best_reading_accuracy": round(sum(p["best_reading_right"] for p in per_plate) / len(per_plate), 4),
        # What a parking system stores without a second look: plates answered `confident`, and
        # the share of all plates answered confident and wrong (the figure that must stay near 0).
        "confident_share": round(sum(p["confident"] for p in per_plate) / len(per_plate), 4),
        "false_confident_share": round(
            sum(p["confident"] and not p["correct"] for p in per_plate) / len(per_plate), 4
        ),
        "without_format": without,
        **foreign_summary(per_plate),
        "one_row_plates": sum(not p["params"]["two_rows"] for p in per_plate),
        "two_row_plates": sum(p["params"]["two_rows"] for p in per_plate),
        "ms_per_plate_median": round(float(np.median(seconds)) * 1000, 2),
    }
    return summary, per_plate


def plates_figure(
    plates: Sequence[Plate], results: Sequence[dict[str, Any]], out: Path, columns: int = 3, shown: int = 12
) -> Path:
    """Some plates with the characters' boxes the reader found and what was read (wrong readings first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    wrong = [i for i, r in enumerate(results) if not r["correct"]]
    right = [i for i, r in enumerate(results) if r["correct"]]
    chosen = (wrong[: shown // 3] + right)[:shown]
    rows = (len(chosen) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), chosen, strict=False):
        plate, result = plates[index], results[index]
        ax.imshow(plate.image)
        for x, y, w, h in result["boxes"]:
            ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="yellow", linewidth=1.2))
        truth = " / ".join(" ".join(row) for row in result["truth"])
        read = " / ".join(" ".join(row) for row in result["read"])
        mark = "ok" if result["correct"] else "WRONG"
        ax.set_title(f"#{index} {mark}\ntrue {truth}\nread {read}", fontsize=8, family="monospace")
    fig.suptitle("Synthetic plates from held-out test crops: the characters found (yellow) and readings")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def crop_by_crop(
    plates: Sequence[Plate], crops: Mapping[str, Sequence[Path]], model: Model
) -> dict[str, Any]:
    """The classifier's own ceiling: each plate scored as if every crop were read alone, like ``/predict``.

    No segmentation, no plate format: the share of plates whose crops the model
    classifies right one by one. The gap to the plate reader's score is what
    segmentation (and the format) lose or win.
    """
    paths = [path for label in LABELS for path in crops[label]]
    inputs = np.stack([load_file(str(path), model.metadata.spec) for path in paths])
    predicted = model.run(inputs).argmax(axis=1)
    right = {
        f"{path.parent.name}/{path.name}": LABELS[int(k)] == path.parent.name
        for path, k in zip(paths, predicted, strict=True)
    }
    plates = [plate for plate in plates if not plate.foreign]  # a rendered letter has no crop to read alone
    uses = [source for plate in plates for row in plate.sources for source in row]
    return {
        "crops_misread": sorted(name for name, ok in right.items() if not ok),
        "character_accuracy": round(sum(right[u] for u in uses) / len(uses), 4),
        "whole_plate_accuracy": round(
            sum(all(right[s] for row in plate.sources for s in row) for plate in plates) / len(plates), 4
        ),
    }


def served_finder(repository: str | Path) -> CharFinder:
    """The newest character finder in the repository: what ``/read-plate`` reads plates with."""
    files = locate(repository, FINDER_MODEL)
    return CharFinder(files.onnx, files.metadata)


def served_letters(repository: str | Path) -> LetterNamer:
    """The newest letter model in the repository: what ``/read-plate`` names letters with."""
    files = locate(repository, LETTER_MODEL)
    letters = Model(files.onnx, files.metadata)
    return LetterNamer(letters.metadata, letters.run)


def served_plate_reader(finder: CharFinder, model: Model, repository: str | Path) -> FinderReader:
    """The plate reader ``/read-plate`` serves (:func:`lpr.readers.served_reader`), outside the service:
    ``finder`` and ``model``, and the repository's letter model."""
    return served_reader(finder, model.run, model.metadata, letters=served_letters(repository))


def served_files(repository: str | Path, reports: str | Path = REPORTS) -> ModelFiles:
    """The shipped model's served file: the newest ``lpr-default``, or its int8 variant of the same
    version once ``lpr-train quantize`` found that it earned it (``quantization.served_by_default``)."""
    shipped = locate(repository, DEFAULT_MODEL)
    meta = load_record(shipped, reports)
    if (meta.get("quantization") or {}).get("served_by_default") == "int8":
        return locate(repository, INT8_MODEL, shipped.version)
    return shipped


def run_plate_eval(
    data: str | Path,
    repository: str | Path = DEFAULT_REPOSITORY,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
    split: str = "test",
    run: str | Path | None = None,
    reports: str | Path = REPORTS,
    foreign: float = 0.0,
) -> dict[str, Any]:
    """``lpr-train plates``: generate, read, score; write the report and, for test crops, the figure.

    The shipped model (the served file, from the model repository) writes
    ``reports/plates_eval.json`` and ``reports/figures/plates_examples.png`` for
    plates of test crops, ``reports/plates_eval_val.json`` for plates of its
    validation crops. With ``run`` (a run folder), that run's exported model is
    read instead and nothing is written: that is how recipes are compared on
    plates made of their validation crops before one is shipped.
    """
    data, repository, reports = Path(data), Path(repository), Path(reports)
    if run is not None:
        model = Model(Path(run) / MODEL_FILE, Path(run) / METADATA_FILE)
        meta = model.metadata.raw
        model_file = (Path(run) / MODEL_FILE).as_posix()
    else:
        # The recipe's validation split is the float model's (the int8 file shares its metadata).
        meta = load_record(locate(repository, DEFAULT_MODEL), reports)
        served = served_files(repository, reports)
        model = Model(served.onnx, served.metadata)
        model_file = served.relative
    crop_source = validation_crops(data, meta) if split == "val" else crops_in(data / split)
    plates = list(generate_plates(crop_source, count=count, seed=seed, foreign=foreign))
    finder = served_finder(repository)
    plate_reader = served_plate_reader(finder, model, repository)
    summary, per_plate = evaluate_plates(plates, plate_reader, plate_reader.names)
    summary["crop_by_crop"] = crop_by_crop(plates, crop_source, model)
    command = f"lpr-train plates --data {data.as_posix()}"
    if repository.resolve() != DEFAULT_REPOSITORY.resolve():
        command += f" --models {repository.as_posix()}"
    command += f" --count {count} --seed {seed}"
    if split != "test":
        command += f" --split {split}"
    if foreign:
        command += f" --foreign {foreign:g}"
    report = {
        "model": model.metadata.model_version,
        "reader": finder.metadata.model_version,
        "model_file": model_file,
        "crops": split,
        "seed": seed,
        "count": count,
        "foreign": foreign,
        "command": command,
        **summary,
        "errors": [
            {k: p[k] for k in ("index", "truth", "read", "confident", "segmented_right", "sources", "params")}
            for p in per_plate
            if not p["correct"]
        ],
    }
    # Runs not shipped are for development: they write nothing. The shipped model's plates of
    # validation crops (where recipes and the segmenter are chosen) go beside the test result.
    if run is None:
        reports.mkdir(parents=True, exist_ok=True)
        name = PLATES_EVAL_FOREIGN if foreign else PLATES_EVAL if split == "test" else PLATES_EVAL_VAL
        out = reports / name
        write_json(out, report)
        if split == "test" and not foreign:
            plates_figure(plates, per_plate, figures_dir(reports) / PLATES_FIGURE)
    return report


def summary(report: dict[str, Any], split: str) -> str:
    """The report's figures for the command line: one line, and one more for plates with foreign letters."""
    text = (
        f"{report['plates']} plates ({report['characters']} characters, {split} crops, seed "
        f"{report['seed']}): whole-plate accuracy {report['whole_plate_accuracy']:.4f}, character "
        f"accuracy {report['character_accuracy']:.4f}, segmentation right on "
        f"{report['segmentation_accuracy']:.4f}; without the plate format "
        f"{report['without_format']['whole_plate_accuracy']:.4f} / "
        f"{report['without_format']['character_accuracy']:.4f}; answered confident "
        f"{report['confident_share']:.4f}, confident and wrong {report['false_confident_share']:.4f}"
    )
    if "foreign_plates" in report:
        text += (
            f"\n{report['foreign_plates']} plates with a letter outside the twelve: letters flagged "
            f"{report['foreign_letters_flagged']:.4f}, plates read right "
            f"{report['foreign_whole_plate_accuracy']:.4f}, confident and wrong "
            f"{report['foreign_plates_false_confident']:.4f}; in-class plates read right "
            f"{report['in_class_whole_plate_accuracy']:.4f}"
        )
    return text
