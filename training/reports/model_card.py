"""``reports/MODEL_CARD.md``: what the shipped model is, how good, how cheap, and where it fails.

The models are read from the model repository (``models/<name>/<version>/``,
:mod:`lpr.repository`), the plate evaluations and figures from ``reports/``,
where the card is written, so its figure links are relative to ``reports/``.
The Markdown is ``templates/card.md`` and one template per section
(:mod:`training.reports.template`); this module computes the facts they show.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lpr.labels import DEVANAGARI, LABELS
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from lpr.preprocessing import InputSpec, load_file
from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, REFERENCE_MODEL, ModelFiles, locate, versions
from training.common.outputs import MODEL_CARD, REPORTS, SAMPLES
from training.common.records import load_record, record_path
from training.common.timing import ms_per_image
from training.fitting.recipes import RECIPES
from training.release.quantize import INT8_MODEL
from training.reports.calibration_section import (
    CALIBRATION_TITLE,
    SOURCES_TITLE,
    calibration_section,
    sources_section,
)
from training.reports.plates_section import PLATES_TITLE, photos_section, plates_section
from training.reports.real_plates_section import real_plates_section
from training.reports.template import fill, shown

HEADLINE_COLUMNS = (
    "model",
    "test accuracy",
    "macro-F1",
    "ECE",
    "parameters",
    "MFLOPs / image",
    "ms / image, batch 1",
    "ms / image, batch 64",
    "training time",
)


def _row(meta: dict, timing: tuple[float, float]) -> list[str]:
    tm = meta["test_metrics"]
    return [
        f"`{meta['architecture']}`",
        f"{tm['accuracy'] * 100:.2f} % ({tm['errors']}/{tm['n']} wrong)",
        f"{tm['macro_f1']:.4f}",
        f"{tm['ece']:.4f}",
        f"{meta['parameters']:,}",
        f"{meta['flops'] / 1e6:,.1f}",
        f"{timing[0]:.3f}",
        f"{timing[1]:.3f}",
        f"{meta['training']['train_seconds'] / 60:.1f} min ({meta['training']['epochs_run']} epochs)",
    ]


def _headline_table(models: list[tuple[ModelFiles, dict]]) -> str:
    """Reference and shipped side by side (files and records), both timed here as the service runs them."""
    table = ["| " + " | ".join(HEADLINE_COLUMNS) + " |", "|" + "---|" * len(HEADLINE_COLUMNS)]
    for files, meta in models:
        timing = (ms_per_image(files.onnx, 1), ms_per_image(files.onnx, 64))
        table.append("| " + " | ".join(_row(meta, timing)) + " |")
    return "\n".join(table)


def _per_class(default_run: Path) -> str:
    """The shipped run's per-class test scores (its ``metrics.json``)."""
    metrics = json.loads((default_run / "metrics.json").read_text())
    rows = ["| class | precision | recall | F1 | test crops |", "|---|---|---|---|---|"]
    for label in LABELS:
        c = metrics["per_class"][label]
        rows.append(
            f"| {DEVANAGARI[label]} (`{label}`) | {c['precision']:.3f} | {c['recall']:.3f} | "
            f"{c['f1']:.3f} | {c['support']} |"
        )
    return "\n".join(rows)


def _sample_predictions(onnx_path: Path, spec: InputSpec) -> str:
    files = sorted(SAMPLES.glob("*.png"))
    if not files:
        return ""
    probs = onnx_predict(onnx_session(onnx_path), np.stack([load_file(str(f), spec) for f in files]))
    lines = ["| sample | true | predicted | confidence |", "|---|---|---|---|"]
    for f, p in zip(files, probs, strict=True):
        best = LABELS[int(p.argmax())]
        lines.append(f"| `{f.name}` | {DEVANAGARI[f.stem]} | {DEVANAGARI[best]} (`{best}`) | {p.max():.4f} |")
    return "\n".join(lines)


#: What each augmentation field of a recipe adds, for the model card (``{share}``: the field's value).
_ADDITIONS = {
    "outlier_exposure": "outlier exposure: {share:.0%} as many out-of-class crops as training inputs "
    "(`training/synthesis/ood.py`, training half of its symbols and fonts) with a uniform target over "
    "the twelve classes, so such crops get low confidence (see *Out-of-class answers* below)",
    "frame_bars": "strips of the plate's frame along an edge in {share:.0%} of the re-binarised variants "
    "(`training/synthesis/augment.py`), as tightly cut plate crops keep them",
    "rings": "a whole frame round the glyph in {share:.0%} of the re-binarised variants, as crops cut "
    "along a plate cell's painted border keep it",
    "neighbours": "a sliver of another training glyph beside the glyph in {share:.0%} of the re-binarised "
    "variants, as crops cut from tightly spaced plates (and glyphs the plate reader cuts out) keep the "
    "edge of the character next to them",
}


def _recipe_note(shipped: dict) -> str:
    """How the shipped recipe differs from ``default``, read off the recipe itself."""
    recipe = shipped["training"]["recipe"]
    base = RECIPES["default"]
    changes = [text.format(share=recipe[key]) for key, text in _ADDITIONS.items() if recipe.get(key)]
    if recipe.get("arch", base.arch) != base.arch:
        stages = " / ".join("-".join(str(f) for f in stage) for stage in recipe["stages"])
        changes.append(
            f"the `{recipe['arch']}` network: a lossless space-to-depth stem (each 2x2 patch of the 32x32 "
            f"input as 4 channels) and 3x3 conv stages of {stages} filters at 16x16 and below, about half "
            "the compute of `default`"
        )
    if recipe.get("sources"):
        names = ", ".join(f"`{s}`" for s in recipe["sources"])
        changes.append(
            f"fitted on {len(recipe['sources'])} real sources ({names}; see *Data from elsewhere*) instead "
            f"of `lpr` alone, validation {recipe['val_fraction']:.0%} of each by whole near-duplicate groups"
        )
    if recipe.get("unknown_copies", -1) >= 0:
        changes.append(
            f"the sources' real crops outside the twelve (च) fitted with a uniform target, with "
            f"{recipe['unknown_copies']} re-binarised variants each, beside the rendered outliers"
        )
    if recipe.get("ink_copies", base.ink_copies) != base.ink_copies:
        per_source = "".join(f", {n} for `{s}`" for s, n in recipe.get("source_ink_copies", []))
        changes.append(
            f"{recipe['ink_copies']} re-binarised variants of each training crop instead of "
            f"{base.ink_copies}{per_source}"
        )
    if recipe["epochs"] != base.epochs:
        changes.append(f"{recipe['epochs']} epochs instead of {base.epochs}")
    if tuple(recipe.get("widths", base.widths)) != base.widths:
        changes.append(f"stage widths {tuple(recipe['widths'])} instead of {base.widths}")
    if not changes:
        return ""
    listed = "".join(f"\n- {change};" for change in changes).rstrip(";") + "."
    return (
        f"\n\n`{shipped['architecture']}` is `default` plus:\n{listed}\n\n"
        "`--arch default` still trains `default` (model 1.0.0's recipe; since model 1.2.0's polarity "
        "rule, 19 of the 2,002 dataset crops reach it differently)."
    )


def _serving_section(shipped: dict) -> str:
    """Which of the two shipped files the service runs, and the measurement that decided it."""
    title = "## The file the service runs: float32 or int8"
    q = shipped.get("quantization")
    if not q:
        return f"{title}\n\nNo int8 variant yet: run `lpr-train quantize`."
    rows = ["| file | test accuracy | ms / image, batch 1 | ms / image, batch 64 |", "|---|---|---|---|"]
    for kind in ("float32", "int8"):
        v = q[kind]
        rows.append(
            f"| `{v['file']}` ({kind}) | {v['accuracy'] * 100:.2f} % | {v['ms_per_image_batch1']:.3f} | "
            f"{v['ms_per_image_batch64']:.3f} |"
        )
    return fill(
        "serving",
        {
            "title": title,
            "calibration_crops": q["calibration_crops"],
            "timed_with": q.get("timed_with", "ONNX Runtime"),
            "rows": "\n".join(rows),
            "accuracy_drop": f"{q['accuracy_drop_points']:.2f}",
            "verdict": "yes" if q["int8_qualifies"] else "no",
            "served": q[q["served_by_default"]]["file"],
        },
    )


def _int8_record(repository: Path, shipped: ModelFiles, reports: Path) -> tuple[Path, dict] | None:
    """Where the int8 copy of the shipped version keeps its record, and the record, if one shipped."""
    if shipped.version not in versions(repository, INT8_MODEL):
        return None
    files = locate(repository, INT8_MODEL, shipped.version)
    return record_path(files.name, files.version, reports), load_record(files, reports)


def _model_facts(files: ModelFiles, shipped: dict, reference: dict, reports: Path) -> dict[str, object]:
    """The card's header: the shipped file, its input and its cost against the reference."""
    spec = InputSpec.from_dict(shipped["preprocessing"])
    return {
        "name": shipped["name"],
        "version": shipped["version"],
        "onnx_file": shown(files.onnx),
        "opset": shipped["onnx"]["opset"],
        "input_shape": shipped["input"]["shape"],
        "onnx_sha256": shipped["onnx"]["sha256"],
        "metadata_file": shown(files.metadata),
        "record_file": shown(record_path(files.name, files.version, reports)),
        "size": spec.size,
        "margin": spec.margin,
        "test_n": shipped["test_metrics"]["n"],
        "onnxruntime": shipped["onnx"]["onnxruntime"],
        "cpu": f"{os.cpu_count()} CPU cores",
        "flops_ratio": f"{reference['flops'] / shipped['flops']:.0f}",
        "sample_predictions": _sample_predictions(files.onnx, spec),
    }


def _reproduce_facts(shipped: dict, reference: dict, default_run: Path) -> dict[str, object]:
    """The recipe, the dataset and the commands that remake the shipped model and this card."""
    recipe, dataset, training = shipped["training"]["recipe"], shipped["dataset"], shipped["training"]
    multi = dataset.get("layout") == "sources"
    arch = shipped["architecture"]
    return {
        "arch": arch,
        "recipe_arch": recipe["arch"],
        "epochs": recipe["epochs"],
        "best_epoch": training["best_epoch"],
        "epochs_run": training["epochs_run"],
        "batch_size": recipe["batch_size"],
        "optimizer": recipe["optimizer"],
        "learning_rate": recipe["learning_rate"],
        "val_fraction": f"{recipe['val_fraction']:.0%}",
        "validation": "every source (whole near-duplicate groups" if multi else "`train/` (stratified",
        "seed": shipped["seed"],
        "augmentation": recipe["augmentation"],
        "dataset_sha256": dataset["sha256"],
        "train_size": dataset["sizes"]["train"],
        "val_size": dataset["sizes"]["val"],
        "test_size": dataset["sizes"]["test"],
        "versions": training["versions"],
        "data": "../shared/data" if multi else "../shared/data/lpr",
        "run_dir": default_run.as_posix(),
        "reference_seed": reference["seed"],
        "loso": f"\nlpr-train evaluate --leave-one-source-out --arch {arch}" if multi else "",
    }


def write_card(
    default_run: str | Path, repository: str | Path = DEFAULT_REPOSITORY, reports: str | Path = REPORTS
) -> Path:
    """Compare the newest ``lpr-default`` with the newest ``lpr-reference``, timing both here.

    Writes ``<reports>/MODEL_CARD.md`` (and the README's copy of the headline table).
    """
    repository, reports, default_run = Path(repository), Path(reports), Path(default_run)
    shipped_files = locate(repository, DEFAULT_MODEL)
    reference_files = locate(repository, REFERENCE_MODEL)
    shipped = load_record(shipped_files, reports)
    reference = load_record(reference_files, reports)
    table = _headline_table([(reference_files, reference), (shipped_files, shipped)])
    text = fill(
        "card",
        {
            **_model_facts(shipped_files, shipped, reference, reports),
            **_reproduce_facts(shipped, reference, default_run),
            "headline_table": table,
            "recipe_note": _recipe_note(shipped),
            "serving_section": _serving_section(shipped),
            "per_class": _per_class(default_run),
            "calibration_section": calibration_section(
                shipped, _int8_record(repository, shipped_files, reports)
            ),
            "sources_section": sources_section(shipped, reports),
            "plates_section": plates_section(reports),
            "photos_section": photos_section(reports),
            "real_plates_section": real_plates_section(reports),
        },
    )
    reports.mkdir(parents=True, exist_ok=True)
    out = reports / MODEL_CARD
    out.write_text(text + "\n")
    _update_readme(reports.resolve().parent / "README.md", table)
    return out


#: The card's sections that depend only on the shipped records and ``reports/``, by their headings:
#: ``lpr-train plates`` and ``photos`` refresh them without the training run.
REFRESHED = (
    (CALIBRATION_TITLE, SOURCES_TITLE),
    (SOURCES_TITLE, PLATES_TITLE),
    (PLATES_TITLE, "## Figures"),
)


def refresh_card(repository: str | Path = DEFAULT_REPOSITORY, reports: str | Path = REPORTS) -> Path | None:
    """Rewrite the card's calibration, sources, plates and photos sections in place; None without a card."""
    repository, reports = Path(repository), Path(reports)
    card = reports / MODEL_CARD
    if not card.is_file():
        return None
    shipped_files = locate(repository, DEFAULT_MODEL)
    shipped = load_record(shipped_files, reports)
    fresh = {
        REFRESHED[0][0]: calibration_section(shipped, _int8_record(repository, shipped_files, reports)),
        REFRESHED[1][0]: sources_section(shipped, reports),
        REFRESHED[2][
            0
        ]: f"{plates_section(reports)}\n\n{real_plates_section(reports)}\n\n{photos_section(reports)}",
    }
    text = card.read_text()
    for begin, end in REFRESHED:
        head, found, tail = text.partition(begin)
        if not found:
            continue
        _, found_end, rest = tail.partition(end)
        if found_end:
            text = f"{head}{fresh[begin]}\n\n{end}{rest}"
    card.write_text(text)
    return card


README_MARKERS = ("<!-- model-card-table -->", "<!-- /model-card-table -->")


def _update_readme(readme: Path, table: str) -> None:
    """Keep the README's copy of the headline table identical to the card's."""
    if not readme.is_file():
        return
    text = readme.read_text()
    begin, end = README_MARKERS
    if begin not in text:
        return
    head, _, tail = text.partition(begin)
    _, _, tail = tail.partition(end)
    readme.write_text(f"{head}{begin}\n{table}\n{end}{tail}")
