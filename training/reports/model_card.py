"""``reports/MODEL_CARD.md``: what the shipped model is, how good, how cheap, and where it fails.

The models are read from the model repository (``models/<name>/<version>/``,
:mod:`lpr.repository`), the plate evaluations and figures from ``reports/``,
where the card is written, so its figure links are relative to ``reports/``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from lpr.labels import DEVANAGARI, LABELS
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from lpr.plate_reader import UNREADABLE
from lpr.preprocessing import InputSpec, load_file
from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, REFERENCE_MODEL, ModelFiles, locate, versions
from training.common.outputs import (
    LOSO_REPORT,
    MODEL_CARD,
    PLATES_EVAL,
    PLATES_EVAL_FOREIGN,
    PLATES_EVAL_VAL,
    RELIABILITY_FIGURE,
    REPORTS,
)
from training.common.timing import ms_per_image
from training.fitting.recipes import RECIPES

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"


def _shown(path: Path) -> str:
    """A path as the card shows it: relative to the checkout, never this machine's absolute path."""
    path = Path(path).resolve()
    try:
        return path.relative_to(REPO).as_posix()
    except ValueError:
        return path.name


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


def _sample_predictions(onnx_path: Path, spec: InputSpec) -> list[str]:
    import numpy as np

    files = sorted(SAMPLES.glob("*.png"))
    if not files:
        return []
    probs = onnx_predict(onnx_session(onnx_path), np.stack([load_file(str(f), spec) for f in files]))
    lines = ["| sample | true | predicted | confidence |", "|---|---|---|---|"]
    for f, p in zip(files, probs, strict=True):
        best = LABELS[int(p.argmax())]
        lines.append(f"| `{f.name}` | {DEVANAGARI[f.stem]} | {DEVANAGARI[best]} (`{best}`) | {p.max():.4f} |")
    return lines


def _calibration_section(shipped: dict, int8: ModelFiles | None) -> str:
    """The card's account of ``"unknown"`` answers, from the blocks ``lpr-train calibrate`` wrote."""
    title = "## Out-of-class answers and calibration"
    c = shipped.get("calibration")
    if not c:
        return f"{title}\n\nNot calibrated yet: run `lpr-train calibrate`."
    ood = c["ood"]
    rows = [
        "| crops | n | flagged `unknown` |",
        "|---|---|---|",
        f"| in-class test crops | {c['test_size']} | {c['in_class_test_flagged']:.2%} "
        f"(of which test errors: {c['test_errors_flagged']}) |",
        f"| out-of-class, all | {ood['n']} | {ood['flagged']:.1%} |",
    ]
    names = {
        "devanagari": "other Devanagari letters",
        "latin": "Latin letters",
        "blank": "blanks",
        "smudge": "smudges and scribbles",
    }
    for kind, v in ood["per_kind"].items():
        rows.append(f"| {names.get(kind, kind)} | {v['n']} | {v['flagged']:.1%} |")
    styles = ", ".join(f"{style} {v['flagged']:.1%} (n={v['n']})" for style, v in ood["per_style"].items())
    c8 = json.loads(int8.metadata.read_text()).get("calibration") if int8 is not None else None
    int8_line = (
        f"The int8 variant has its own fit in `{_shown(int8.metadata)}`: T = {c8['temperature']:.3f}, "
        f"threshold {c8['threshold']:.4f}, test ECE {c8['ece_test_before']:.4f} -> "
        f"{c8['ece_test_after']:.4f}, "
        f"{c8['in_class_test_flagged']:.2%} of test crops and {c8['ood']['flagged']:.1%} of out-of-class "
        "crops flagged."
        if c8
        else ""
    )
    nll = f"NLL {c['nll_validation_before']:.4f} -> {c['nll_validation_after']:.4f}"
    probes = "".join(
        f"\n- {symbol}: read as {p['read_as']} (median confidence {p['median_confidence']:.2f}), "
        f"flagged in {p['flagged']:.0%} of {p['renders']} renders"
        for symbol, p in c.get("probes", {}).items()
    )
    if probes:
        probes = "\nSingle symbols, dataset look:" + probes
    bars = _letter_line(c) + _plate_line(c)
    return f"""{title}

The network always answers one of the twelve classes, so the service also says whether to trust
that answer. Its probabilities are first calibrated by temperature scaling: `softmax(log(p) / T)`
with T = {c["temperature"]:.3f}, the value minimising the negative log-likelihood on the
{c["validation_size"]} validation crops ({nll}; T < 1 sharpens a model that label smoothing left
under-confident, T > 1 softens an over-confident one). An answer whose calibrated top probability
is below **{c["threshold"]:.4f}** carries `"unknown": true`, its label kept as the best guess.
The threshold is the {c["threshold_rule"]}; the test split was not used for either choice.{bars}

| expected calibration error (15 bins) | before (T = 1) | after (T = {c["temperature"]:.3f}) |
|---|---|---|
| validation ({c["validation_size"]} crops, fitted here) | {c["ece_validation_before"]:.4f} | \
{c["ece_validation_after"]:.4f} |
| test ({c["test_size"]} crops) | {c["ece_test_before"]:.4f} | {c["ece_test_after"]:.4f} |

Out-of-class crops: {ood["n"]} seeded renders (`training/ood.py`, seed {ood["seed"]}) of Devanagari
letters that are none of the twelve (च, क, र, अ ...; Lohit Devanagari, Lohit Nepali, Gargi), Latin
A-Z/a-z (DejaVu), blanks and smudges, styled like the dataset (thick white strokes on black, stretched,
speckled, JPEG) or like uploads (white paint on a noisy red plate), all through the service's
preprocessing.

{chr(10).join(rows)}

Per style (binary = dataset look, plate = upload look, black/specks = blanks, blobs/scribble =
smudges): {styles}. Symbols never flagged in any of their renders: {ood["symbols_never_flagged"]}.
{probes}

The top probability is the only signal this model gives: a crop with nothing in it is caught, but
a letter or a blob whose shape resembles one of the twelve classes can still be answered as that
class with high confidence, so `unknown: false` does not prove the crop is a plate character. The
model is trained towards a uniform answer on out-of-class crops (outlier exposure), which is what
makes the flag work on most letters; the out-of-class figures above are on symbols and fonts it
never saw.

{int8_line}

![out-of-class examples](figures/ood_examples.png)"""


def _letter_line(c: dict) -> str:
    """The plate reader's bar for zone and class letters, where the calibration has one."""
    if "letter_threshold" not in c:
        return ""
    return (
        f"\nOn a plate, a zone or class-letter slot reads बा or प only above **{c['letter_threshold']:.4f}** "
        f"(else `?`): the {c['letter_threshold_rule']}. Those slots hold twenty letters of which the model "
        f"knows two; {c['letter_test_flagged']:.2%} of the test बा and प crops fall below it."
    )


def _plate_line(c: dict) -> str:
    """The bar every character of a confident plate clears, where the calibration has one."""
    if "plate_threshold" not in c:
        return ""
    v = c["plate_validation"]
    return (
        "\n\nA plate is `confident` only when every character's probability is at least "
        f"**{c['plate_threshold']:.4f}**: the {c['plate_threshold_rule']}. On those validation plates "
        f"it takes the confident share from {v['confident_before']:.1%} to {v['confident']:.1%} and the "
        f"confident-and-wrong share from {v['confident_and_wrong_before']:.1%} to "
        f"{v['confident_and_wrong']:.1%}: a plate system stores what is confident, so a doubtful plate "
        "goes to a person instead."
    )


#: The card's sections that depend only on the shipped metadata and ``reports/``, by their headings:
#: ``lpr-train calibrate``, ``plates`` and ``photos`` refresh them without the training run.
REFRESHED = (
    ("## Out-of-class answers and calibration", "## Data from elsewhere"),
    ("## Data from elsewhere", "## Whole plates"),
    ("## Whole plates", "## Figures"),
)


def refresh_card(repository: str | Path = DEFAULT_REPOSITORY, reports: str | Path = REPORTS) -> Path | None:
    """Rewrite the card's calibration, sources, plates and photos sections in place; None without a card."""
    from training.release.quantize import INT8_MODEL

    repository, reports = Path(repository), Path(reports)
    card = reports / MODEL_CARD
    if not card.is_file():
        return None
    shipped_files = locate(repository, DEFAULT_MODEL)
    shipped = json.loads(shipped_files.metadata.read_text())
    int8_files = (
        locate(repository, INT8_MODEL, shipped_files.version)
        if shipped_files.version in versions(repository, INT8_MODEL)
        else None
    )
    fresh = {
        REFRESHED[0][0]: _calibration_section(shipped, int8_files),
        REFRESHED[1][0]: _sources_section(shipped, reports),
        REFRESHED[2][0]: f"{_plates_section(reports)}\n\n{photos_section(reports)}",
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


def _validation_plates_row(reports: Path) -> str:
    """The same reading of plates made of validation crops, if measured: where the recipe was chosen."""
    path = reports / PLATES_EVAL_VAL
    if not path.is_file():
        return ""
    v = json.loads(path.read_text())
    return (
        f"\n| plate reader on {v['plates']} plates of the model's **validation** crops (seed {v['seed']}; "
        f"where recipes and the segmenter were chosen) | {v['whole_plate_accuracy']:.2%} | "
        f"{v['character_accuracy']:.2%} |"
    )


def _plate_only_note(r: dict) -> str:
    """The characters misread on a plate although their crop is read right alone, if any.

    They are why the plate reader can fall short of reading each crop alone: the
    crop resampled to the plate's character size, blurred, noised, tilted and cut
    out again is a slightly different input, enough to flip a borderline crop.
    """
    alone_wrong = set(r["crop_by_crop"]["crops_misread"])
    counts: Counter[str] = Counter()
    for plate in r["errors"]:
        if not plate["segmented_right"]:
            continue  # counted by the segmentation figure
        for truth, read, sources in zip(plate["truth"], plate["read"], plate["sources"], strict=True):
            for want, got, source in zip(truth, read, sources, strict=True):
                if want != got and got != UNREADABLE and source not in alone_wrong:  # flagged, not misread
                    counts[source] += 1
    if not counts:
        return ""
    listed = ", ".join(f"`{source}` {n}x" for source, n in counts.most_common())
    total = sum(counts.values())
    are = "characters are" if total != 1 else "character is"
    return (
        f". A further {total} {are} misread only on a plate, the crop read right "
        f"alone ({listed}): resampled to the plate's character size, blurred, noised, tilted and cut out "
        "again, a borderline crop flips"
    )


def _plates_section(reports: Path) -> str:
    """Whole plates (``POST /read-plate``), from ``plates_eval.json`` that ``lpr-train plates`` wrote."""
    title = "## Whole plates"
    path = reports / PLATES_EVAL
    if not path.is_file():
        return f"{title}\n\nNot measured yet: run `lpr-train plates --data ../shared/data/lpr`."
    r = json.loads(path.read_text())
    bar = "meets" if r["whole_plate_accuracy"] >= 0.90 else "misses"
    ceiling = r["crop_by_crop"]
    return f"""{title}

`POST /read-plate` (`lpr/plate_reader.py`) segments a plate with connected components
(`lpr/segmentation.py`), reads every character in one batched inference (`{r["model"]}`, the served
file) and decodes it against the plate grammar (`lpr/plate_grammar.py`: zone + lot + class letter +
serial); a letter the model does not read, or a doubtful mark, is answered `?`, and the plate is
`confident` only when no character is and every character clears the plate bar (fitted on
validation plates, see the calibration section). The evaluation reads each plate with that same
reader.
There is no dataset of whole plates, so it is measured on
{r["plates"]} synthetic plates ({r["one_row_plates"]} one-row, {r["two_row_plates"]} two-row,
{r["characters"]} characters) composed by `training/plates.py` from the held-out **test** crops: random
size, spacing, tilt up to ±5°, uneven light, blur, noise, screws, frames and separator dots; seed
{r["seed"]}. The segmenter was developed on plates made of the model's validation crops, never on these.

| | whole-plate accuracy | character accuracy |
|---|---|---|
| plate reader (what the service answers; a `?` counts as not read) | **{r["whole_plate_accuracy"]:.2%}** | \
{r["character_accuracy"]:.2%} |
| its best reading (`readings[0]`) | {r["best_reading_accuracy"]:.2%} | |
| without the plate grammar | {r["without_format"]["whole_plate_accuracy"]:.2%} | \
{r["without_format"]["character_accuracy"]:.2%} |
| each crop read alone, no segmentation (the classifier's ceiling) | {ceiling["whole_plate_accuracy"]:.2%} | \
{ceiling["character_accuracy"]:.2%} |{_validation_plates_row(reports)}

Character accuracy is `1 - edit distance / true characters` over each plate's labels in reading order,
so a missed or spurious character costs one error and does not shift the rest. The segmenter found
exactly the right characters per row on {r["segmentation_accuracy"]:.2%} of the plates; median
{r["ms_per_plate_median"]:.0f} ms per plate on this machine. The whole-plate score {bar} the 90 % target.
What is left is mostly the classifier: {len(ceiling["crops_misread"])} test crops it misreads even alone
({", ".join(f"`{c}`" for c in ceiling["crops_misread"])}) each appear on several plates, and no
segmentation can fix those{_plate_only_note(r)}; the original paper reports 75 % of whole plates read.

Answered `confident` on {r["confident_share"]:.2%} of these plates; **confident and wrong on
{r["false_confident_share"]:.2%}**, the figure a parking system lives with (the goal is under 1 %): what
is left are test crops the model misreads with very high calibrated confidence, above the plate bar.

![synthetic plates with the segmenter's boxes and readings](figures/plates_examples.png)

Reproduce: `{r["command"]}` (writes `reports/plates_eval.json` with every misread plate).
{_foreign_plates_section(reports)}"""


def _foreign_plates_section(reports: Path) -> str:
    """Plates with zone or class letters outside the twelve, from ``plates_eval_foreign.json``."""
    path = reports / PLATES_EVAL_FOREIGN
    if not path.is_file():
        return "\nNot measured yet on plates with other letters: `lpr-train plates --data ... --foreign 0.5`."
    r = json.loads(path.read_text())
    rows = "\n".join(
        f"| {symbol} | {v['letters']} | {v['flagged']:.0%} |"
        for symbol, v in r["foreign_flagged_by_symbol"].items()
    )
    return f"""
### Plates with letters the model does not read

The same {r["count"]} plates (seed {r["seed"]}), {r["foreign_plates"]} of them painted with a zone
letter other than बा or a class letter other than प (च on a car, say), rendered in the Devanagari
font no training crop is drawn in (Gargi), given the hand-painted look of real plates (uneven
stroke, bent lines: `training.ood.hand_painted`) and read by the same reader:

| | share |
|---|---|
| their foreign letters answered `?` | **{r["foreign_letters_flagged"]:.2%}** |
| those plates read exactly (`?` where the letter is) | {r["foreign_whole_plate_accuracy"]:.2%} |
| those plates answered confident and wrong | {r["foreign_plates_false_confident"]:.2%} |
| the in-class plates among them read exactly | {r["in_class_whole_plate_accuracy"]:.2%} |
| all {r["count"]} plates answered confident and wrong | {r["false_confident_share"]:.2%} |

| letter | on plates | answered `?` |
|---|---|---|
{rows}

Reproduce: `{r["command"]}` (writes `reports/plates_eval_foreign.json`)."""


#: What each augmentation field of a recipe adds, for the model card (``{share}``: the field's value).
_ADDITIONS = {
    "outlier_exposure": "outlier exposure: {share:.0%} as many out-of-class crops as training inputs "
    "(`training/ood.py`, training half of its symbols and fonts) with a uniform target over the twelve "
    "classes, so such crops get low confidence (see *Out-of-class answers* below)",
    "frame_bars": "strips of the plate's frame along an edge in {share:.0%} of the re-binarised variants "
    "(`training/augment.py`), as tightly cut plate crops keep them",
    "rings": "a whole frame round the glyph in {share:.0%} of the re-binarised variants, as crops cut "
    "along a plate cell's painted border keep it",
    "neighbours": "a sliver of another training glyph beside the glyph in {share:.0%} of the re-binarised "
    "variants, as crops cut from tightly spaced plates (and glyphs the plate reader cuts out) keep the "
    "edge of the character next to them",
}


SOURCE_NAMES = {
    "lpr": "LPR, binarised",
    "lpr-colour": "LPR, as photographed",
    "nnprs-chars": "second project (nnprs)",
}
#: The origins leave-one-source-out leaves out: the LPR project's two forms go together.
ORIGIN_NAMES = {"lpr": "LPR (both forms)", "nnprs-chars": "second project (nnprs)"}
SET_NAMES = {
    "test": "test split",
    "val": "validation groups",
    "all": "every crop",
    "unknown_val": "validation",
}


def _source_tables(c: dict) -> str:
    """Per source: accuracy, calibration and the unknown flag, from ``lpr-train calibrate``'s ``sources``."""
    rows = [
        "| source | crops | n | accuracy | worst class | ECE | in-class flagged | wrong, not flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    unknown_rows = ["| source | real crops outside the twelve | n | flagged `unknown` | the rest read as |"]
    unknown_rows.append("|---|---|---|---|---|")
    for source, sets in c["sources"].items():
        name = SOURCE_NAMES.get(source, source)
        for split, r in sets.items():
            if split == "unknown_val":
                passed = ", ".join(f"{DEVANAGARI.get(k, k)} {v}" for k, v in r["passed_as"].items()) or "-"
                unknown_rows.append(
                    f"| {name} | च, {SET_NAMES[split]} | {r['n']} | {r['flagged']:.1%} | {passed} |"
                )
                continue
            worst = r["worst_class"]
            rows.append(
                f"| {name} | {SET_NAMES.get(split, split)} | {r['n']} | {r['accuracy']:.2%} | "
                f"{DEVANAGARI[worst]} {r['per_class_accuracy'][worst]:.1%} | {r['ece']:.4f} | "
                f"{r['flagged']:.2%} | {r['wrong_not_flagged']:.2%} |"
            )
    return "\n".join(rows) + "\n\n" + "\n".join(unknown_rows)


def _loso_table(reports: Path) -> str:
    """``reports/loso.json`` as a table: each source read by a model trained without it."""
    path = reports / LOSO_REPORT
    if not path.is_file():
        return "Not measured yet: run `lpr-train evaluate --leave-one-source-out`."
    loso = json.loads(path.read_text())
    sources = list(loso["rows"][0]["scores"])
    header = "| trained without | " + " | ".join(SOURCE_NAMES.get(s, s) for s in sources) + " |"
    lines = [header, "|---|" + "---|" * len(sources)]
    for row in loso["rows"]:
        cells = []
        for source in sources:
            r = row["scores"][source]
            mark = "" if r["seen"] else " **(unseen)**"
            never = r.get("classes_never_fitted") or []
            gap = (
                f"; {r['accuracy_fitted_classes']:.2%} without {', '.join(DEVANAGARI[c] for c in never)}, "
                "never fitted"
                if never
                else ""
            )
            cells.append(
                f"{r['accuracy']:.2%} of {r['n']} ({SET_NAMES[r['set']]}){mark}; worst "
                f"{DEVANAGARI[r['worst_class']]} {r['worst_class_accuracy']:.0%}{gap}"
            )
        lines.append(f"| {ORIGIN_NAMES.get(row['left_out'], row['left_out'])} | " + " | ".join(cells) + " |")
    epochs = loso["rows"][0]["epochs"]
    return (
        "\n".join(lines)
        + f"\n\nRecipe `{loso['recipe']}`, seed {loso['seed']}, {epochs} epochs, the same for every row; "
        "the LPR project's two forms (binarised and photographed) are one origin, left out together."
    )


def _sources_section(shipped: dict, reports: Path) -> str:
    """The card's account of the model on every real source, for a multi-source model."""
    c = shipped.get("calibration") or {}
    if "sources" not in c:
        return ""
    sources = shipped["dataset"]["sources"]
    listed = "\n".join(
        f"| `{r['name']}` | {r['form']} | {r['sizes']['fit']} | {r['sizes']['val']} | {r['sizes']['test']} | "
        f"{r['sizes']['unknown_fit']} / {r['sizes']['unknown_val']} | `{r['sha256'][:16]}…` |"
        for r in sources
    )
    return f"""## Data from elsewhere: every source on its own

Trained on {len(sources)} real sources (`training/sources.py`), each split on its own: validation
is whole groups of near-duplicates (`training/grouping.py`: blurred 16x16 signatures, complete
linkage, so no augmented copy of a validation crop is fitted), the photographed LPR crops follow
their binarised twins, and `lpr/test` / `lpr-colour/test` are never read in training. Temperature
and threshold are fitted once, on the pooled validation crops of every source.

| source | form | fitted | validation | test | real च fitted / validation | SHA-256 |
|---|---|---|---|---|---|---|
{listed}

{_source_tables(c)}

"In-class flagged" is the share of crops of the twelve answered `unknown: true` (a caller asks a
person); "wrong, not flagged" is the share answered wrong *and* trusted: the error a parking
system would store. The second source has no test split here (a part of it is held out by its
curators); its validation groups are the figure, and near-duplicates of them are not fitted.

![reliability per source](figures/{RELIABILITY_FIGURE})

### Leave one source out

Each source read by the same recipe trained without it (`lpr-train evaluate --leave-one-source-out`):
the figure that says whether the recipe generalises to crops from another project.

{_loso_table(reports)}"""


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
    served = q[q["served_by_default"]]["file"]
    verdict = "yes" if q["int8_qualifies"] else "no"
    return f"""{title}

`lpr-train quantize` builds a statically quantised int8 copy (ONNX Runtime QDQ, per-channel weights,
MinMax calibration on {q["calibration_crops"]} training crops) and times both files as the service runs
them: {q.get("timed_with", "ONNX Runtime")}. The int8 file becomes the default only if it loses at most
0.3 points of test accuracy and is at least 10 % faster at batch 1 and at batch 64.

{chr(10).join(rows)}

Accuracy drop: {q["accuracy_drop_points"]:.2f} points; int8 qualifies: **{verdict}**.
**Served by default: `{served}`** (in `models/`; `LPR_MODEL_NAME` and `LPR_MODEL_VERSION` choose another,
and `/model` reports the loaded file and its hash). Both files ship, each with its own metadata and
calibration."""


PHOTOS_MARKERS = ("<!-- photos -->", "<!-- /photos -->")


def photos_section(reports: Path) -> str:
    """Whole photos (``lpr-train photos``): detection, end to end, no plate, tight crops, and the grid."""
    from training.evaluation.photo_eval import PHOTOS_FIGURE, PHOTOS_REPORT

    path = Path(reports) / PHOTOS_REPORT
    begin, end = PHOTOS_MARKERS
    if not path.is_file():
        return f"{begin}\n## Whole photos\n\nNot measured yet: run `lpr-train photos`.\n{end}"
    r = json.loads(path.read_text())
    det, fit, e2e = r["detection_validation"], r["detection_fitted"], r["end_to_end"]
    none, tight = r["no_plate"], r["tight_crops"]
    rows = [
        (
            "plate photos the detector never saw (whole plate groups)",
            det["photos"],
            f"plate found at IoU ≥ 0.5: **{det['recall']:.1%}**, precision {det['precision']:.1%}",
        ),
        (
            "plate photos it was fitted on (for contrast)",
            fit["photos"],
            f"found {fit['recall']:.1%}, precision {fit['precision']:.1%}",
        ),
        (
            "photos with their text known (`text.json`; zones other than बा must read `?`)",
            e2e["photos"],
            f"read exactly {e2e['exact']} ({e2e['held_out_exact']} of the {e2e['held_out_photos']} the "
            f"detector never saw); confident {e2e['confident']}, **confident and wrong "
            f"{e2e['confident_and_wrong']}**",
        ),
        (
            "no plate: held-out photos beside their plate, and plain scenes",
            none["images"],
            f"answered with a plate {none['answered_with_a_plate']:.1%}, with a **confident** plate "
            f"**{none['answered_with_a_confident_plate']:.1%}**",
        ),
        (
            "tight crops: synthetic plates of test crops",
            tight["plates"],
            f"one plate filling the image {tight['found_as_the_whole_image']:.1%}; read as the crop "
            f"reader reads it {tight['read_as_the_crop_reader_reads_it']:.1%}",
        ),
    ]
    table = "\n".join(
        ["| set | images | figure |", "|---|---|---|", *(f"| {a} | {n} | {f} |" for a, n, f in rows)]
    )
    return f"""{begin}
## Whole photos

`{r["detector_version"]}` finds the plates, `{r["model_version"]}` reads them, through the
service's own path (`lpr/photo_reader.py`: EXIF, reduced decode, detection, quarter turns,
the plate reader). `lpr-train photos` writes `reports/{PHOTOS_REPORT}`:

{table}

![held-out photos with the plates found and read](figures/{PHOTOS_FIGURE})
{end}"""


def write_card(
    default_run: str | Path, repository: str | Path = DEFAULT_REPOSITORY, reports: str | Path = REPORTS
) -> Path:
    """Compare the newest ``lpr-default`` with the newest ``lpr-reference``, timing both here.

    Writes ``<reports>/MODEL_CARD.md`` (and the README's copy of the headline table).
    """
    from training.release.quantize import INT8_MODEL

    repository, reports = Path(repository), Path(reports)
    shipped_files = locate(repository, DEFAULT_MODEL)
    reference_files = locate(repository, REFERENCE_MODEL)
    int8_files = (
        locate(repository, INT8_MODEL, shipped_files.version)
        if shipped_files.version in versions(repository, INT8_MODEL)
        else None
    )
    shipped = json.loads(shipped_files.metadata.read_text())
    reference = json.loads(reference_files.metadata.read_text())
    shipped_onnx = shipped_files.onnx
    reference_onnx = reference_files.onnx
    timings = {
        "shipped": (ms_per_image(shipped_onnx, 1), ms_per_image(shipped_onnx, 64)),
        "reference": (ms_per_image(reference_onnx, 1), ms_per_image(reference_onnx, 64)),
    }
    header = [
        "model",
        "test accuracy",
        "macro-F1",
        "ECE",
        "parameters",
        "MFLOPs / image",
        "ms / image, batch 1",
        "ms / image, batch 64",
        "training time",
    ]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table.append("| " + " | ".join(_row(reference, timings["reference"])) + " |")
    table.append("| " + " | ".join(_row(shipped, timings["shipped"])) + " |")

    run_dir, arch = Path(default_run).as_posix(), shipped["architecture"]
    metrics = json.loads((Path(default_run) / "metrics.json").read_text())
    per_class = ["| class | precision | recall | F1 | test crops |", "|---|---|---|---|---|"]
    for label in LABELS:
        c = metrics["per_class"][label]
        per_class.append(
            f"| {DEVANAGARI[label]} (`{label}`) | {c['precision']:.3f} | {c['recall']:.3f} | "
            f"{c['f1']:.3f} | {c['support']} |"
        )

    spec = InputSpec.from_dict(shipped["preprocessing"])
    recipe = shipped["training"]["recipe"]
    dataset = shipped["dataset"]
    flops_ratio = reference["flops"] / shipped["flops"]
    multi = dataset.get("layout") == "sources"
    data = "../shared/data" if multi else "../shared/data/lpr"
    validation = "every source (whole near-duplicate groups" if multi else "`train/` (stratified"
    loso = f"\nlpr-train evaluate --leave-one-source-out --arch {arch}" if multi else ""
    cpu = f"{os.cpu_count()} CPU cores"
    text = f"""# Model card: `{shipped["name"]}` {shipped["version"]}

Classifies one cropped character of a Nepali (Bagmati zone) private-motorbike
licence plate into twelve classes: ० १ २ ३ ४ ५ ६ ७ ८ ९ बा प.

- **File**: `{_shown(shipped_onnx)}` (ONNX opset {shipped["onnx"]["opset"]}, input `image`
  float32 NHWC `{shipped["input"]["shape"]}` in [0, 1], output `probabilities` `[N, 12]`),
  SHA-256 `{shipped["onnx"]["sha256"]}`.
- **Metadata**: `{_shown(shipped_files.metadata)}` (labels, preprocessing, recipe, seed, dataset name and
  hash, test metrics).
- **Preprocessing**: `lpr/preprocessing.py`, shared by training and the service: darkest channel,
  Otsu, glyph made white (judged on the crop's ring, outer band and bulk together), tight crop,
  stretched to {spec.size}x{spec.size} with a {spec.margin}px margin.
- **Intended use**: research and prototyping on cropped plate characters. Not for enforcement decisions.
  The dataset's licence allows research use only.

## Reference vs shipped

Test split: `shared/data/lpr/test`, {shipped["test_metrics"]["n"]} crops never used for training or tuning.
Timings: ONNX Runtime {shipped["onnx"]["onnxruntime"]}, CPU, {cpu} of this machine, median of repeated runs
(`lpr-train card`). The shipped model needs 1/{flops_ratio:.0f} of the reference's FLOPs.

{chr(10).join(table)}

The reference is the published design reproduced layer for layer (128x128x3, six conv blocks,
SGD, 20 epochs, batch 32, 70/30 split, shear/zoom 0.2, rotation 10°); the write-up reports ~86 %
validation accuracy. Both models see the same preprocessing.{_recipe_note(shipped)}

{_serving_section(shipped)}

## Shipped model per class (test)

{chr(10).join(per_class)}

## The four colour samples (real uploads, white paint on red)

{chr(10).join(_sample_predictions(shipped_onnx, spec))}

![preprocessing of the samples](figures/samples_preprocessed.png)

## Every test error

Each misclassified test crop as stored in the dataset, titled `true/pred`; judge for yourself
how many a person could read.

![test errors](figures/test_errors.png)

{_calibration_section(shipped, int8_files)}

{_sources_section(shipped, reports)}

{_plates_section(reports)}

{photos_section(reports)}

## Figures

- [samples per class](figures/samples_per_class.png)
- [training curves](figures/training_curves.png)
- [confusion matrix](figures/confusion_matrix.png)
- [grid of test predictions](figures/test_predictions.png)

## Reproduce

Recipe: `{recipe["arch"]}`, {recipe["epochs"]} epochs max (best epoch {shipped["training"]["best_epoch"]} of
{shipped["training"]["epochs_run"]} run), batch {recipe["batch_size"]}, {recipe["optimizer"]} lr
{recipe["learning_rate"]}, validation {recipe["val_fraction"]:.0%} of {validation}, seed
{shipped["seed"]}), augmentation {recipe["augmentation"]}.
Dataset SHA-256 `{dataset["sha256"]}`
({dataset["sizes"]["train"]} train / {dataset["sizes"]["val"]} validation / {dataset["sizes"]["test"]} test).
Versions: {shipped["training"]["versions"]}.

```
lpr-train train --data {data} --arch {arch} --out {run_dir} --seed {shipped["seed"]}
lpr-train train --data ../shared/data/lpr --arch reference --out runs/reference --seed {reference["seed"]}
lpr-train ship --run {run_dir}
lpr-train ship --run runs/reference --name lpr-reference --keras
lpr-train quantize
lpr-train calibrate --figure
lpr-train plates --data ../shared/data/lpr
lpr-train plates --data ../shared/data/lpr --split val
lpr-train plates --data ../shared/data/lpr --foreign 0.5{loso}
lpr-train detector --ship
lpr-train photos
lpr-train card --default {run_dir}
```

## Data and citation

LPR dataset (Pant, Gyawali, Acharya, SKIMA 2015), research use only; binarised copy from
nripesh-k/Automated-Parking-System. See `README.md` for the citation.
"""
    reports.mkdir(parents=True, exist_ok=True)
    out = reports / MODEL_CARD
    out.write_text(text)
    _update_readme(reports.resolve().parent / "README.md", "\n".join(table))
    return out


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
