"""The model card's calibration and per-source sections, from the shipped metadata's ``calibration``
block (``lpr-train calibrate``) and ``reports/loso.json``; they are refreshed in place whenever those
change (:func:`training.reports.model_card.refresh_card`)."""

from __future__ import annotations

from pathlib import Path

from lpr.labels import DEVANAGARI
from training.common.outputs import LOSO_REPORT, RELIABILITY_FIGURE
from training.evaluation.trust_rules import TRUST_REPORT
from training.reports.template import fill, read_report, shown

CALIBRATION_TITLE = "## Out-of-class answers and calibration"
SOURCES_TITLE = "## Data from elsewhere"

OOD_KIND_NAMES = {
    "devanagari": "other Devanagari letters",
    "latin": "Latin letters",
    "blank": "blanks",
    "smudge": "smudges and scribbles",
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


# --- calibration ---------------------------------------------------------------------------------


def _ood_rows(c: dict) -> str:
    ood = c["ood"]
    rows = [
        "| crops | n | flagged `unknown` |",
        "|---|---|---|",
        f"| in-class test crops | {c['test_size']} | {c['in_class_test_flagged']:.2%} "
        f"(of which test errors: {c['test_errors_flagged']}) |",
        f"| out-of-class, all | {ood['n']} | {ood['flagged']:.1%} |",
    ]
    for kind, v in ood["per_kind"].items():
        rows.append(f"| {OOD_KIND_NAMES.get(kind, kind)} | {v['n']} | {v['flagged']:.1%} |")
    return "\n".join(rows)


def _int8_line(int8: tuple[Path, dict] | None) -> str:
    c8 = int8[1].get("calibration") if int8 is not None else None
    if not c8:
        return ""
    return (
        f"The int8 variant has its own fit in `{shown(int8[0])}`: T = {c8['temperature']:.3f}, "
        f"threshold {c8['threshold']:.4f}, test ECE {c8['ece_test_before']:.4f} -> "
        f"{c8['ece_test_after']:.4f}, "
        f"{c8['in_class_test_flagged']:.2%} of test crops and {c8['ood']['flagged']:.1%} of out-of-class "
        "crops flagged."
    )


def _probes(c: dict) -> str:
    probes = "".join(
        f"\n- {symbol}: read as {p['read_as']} (median confidence {p['median_confidence']:.2f}), "
        f"flagged in {p['flagged']:.0%} of {p['renders']} renders"
        for symbol, p in c.get("probes", {}).items()
    )
    return "\nSingle symbols, dataset look:" + probes if probes else ""


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


def calibration_section(shipped: dict, int8: tuple[Path, dict] | None) -> str:
    """The card's account of ``"unknown"`` answers, from the blocks ``lpr-train calibrate`` wrote.

    ``int8``: where the int8 copy's record is kept, and the record, if one was shipped.
    """
    c = shipped.get("calibration")
    if not c:
        return f"{CALIBRATION_TITLE}\n\nNot calibrated yet: run `lpr-train calibrate`."
    ood = c["ood"]
    return fill(
        "calibration",
        {
            "title": CALIBRATION_TITLE,
            "temperature": f"{c['temperature']:.3f}",
            "validation_size": c["validation_size"],
            "nll": f"NLL {c['nll_validation_before']:.4f} -> {c['nll_validation_after']:.4f}",
            "threshold": f"{c['threshold']:.4f}",
            "threshold_rule": c["threshold_rule"],
            "bars": _letter_line(c) + _plate_line(c),
            "ece_validation_before": f"{c['ece_validation_before']:.4f}",
            "ece_validation_after": f"{c['ece_validation_after']:.4f}",
            "test_size": c["test_size"],
            "ece_test_before": f"{c['ece_test_before']:.4f}",
            "ece_test_after": f"{c['ece_test_after']:.4f}",
            "ood_n": ood["n"],
            "ood_seed": ood["seed"],
            "rows": _ood_rows(c),
            "styles": ", ".join(
                f"{style} {v['flagged']:.1%} (n={v['n']})" for style, v in ood["per_style"].items()
            ),
            "symbols_never_flagged": ood["symbols_never_flagged"],
            "probes": _probes(c),
            "int8_line": _int8_line(int8),
        },
    )


# --- sources -------------------------------------------------------------------------------------


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


def _loso_cell(r: dict) -> str:
    mark = "" if r["seen"] else " **(unseen)**"
    never = r.get("classes_never_fitted") or []
    gap = (
        f"; {r['accuracy_fitted_classes']:.2%} without {', '.join(DEVANAGARI[c] for c in never)}, "
        "never fitted"
        if never
        else ""
    )
    return (
        f"{r['accuracy']:.2%} of {r['n']} ({SET_NAMES[r['set']]}){mark}; worst "
        f"{DEVANAGARI[r['worst_class']]} {r['worst_class_accuracy']:.0%}{gap}"
    )


def _loso_table(reports: Path) -> str:
    """``reports/loso.json`` as a table: each source read by a model trained without it."""
    loso = read_report(reports / LOSO_REPORT)
    if loso is None:
        return "Not measured yet: run `lpr-train evaluate --leave-one-source-out`."
    sources = list(loso["rows"][0]["scores"])
    header = "| trained without | " + " | ".join(SOURCE_NAMES.get(s, s) for s in sources) + " |"
    lines = [header, "|---|" + "---|" * len(sources)]
    for row in loso["rows"]:
        cells = [_loso_cell(row["scores"][source]) for source in sources]
        lines.append(f"| {ORIGIN_NAMES.get(row['left_out'], row['left_out'])} | " + " | ".join(cells) + " |")
    epochs = loso["rows"][0]["epochs"]
    return (
        "\n".join(lines)
        + f"\n\nRecipe `{loso['recipe']}`, seed {loso['seed']}, {epochs} epochs, the same for every row; "
        "the LPR project's two forms (binarised and photographed) are one origin, left out together."
    )


def _trust_table(reports: Path) -> str:
    report = read_report(reports / TRUST_REPORT)
    if report is None:
        return "Not measured yet: run `lpr-train trust`."
    first = next(iter(report["rules"].values()))["sources"]
    columns = [(source, split) for source, splits in first.items() for split in splits]
    head = " | ".join(f"{source} {split}" for source, split in columns)
    lines = [f"| rule | threshold | {head} |", "|---|---|" + "---|" * len(columns)]
    for name, rule in report["rules"].items():
        cells = []
        for source, split in columns:
            r = rule["sources"][source][split]
            if "accuracy" in r:
                cells.append(f"{r['flagged']:.1%} / {r['wrong_not_flagged']:.1%}")
            else:
                cells.append(f"{r['flagged']:.1%} flagged (real च)")
        lines.append(f"| {name.replace('_', ' ')} | {rule['threshold']:.6f} | {' | '.join(cells)} |")
    verdict = (
        "One threshold meets both targets on validation."
        if report["both_met_on_validation"]
        else "No threshold meets both targets on validation: catching the errors flags 4–7 % of right "
        "crops on the LPR sources. The served rule stays; what would meet both is a more accurate model "
        "on the LPR crops, not a threshold tuned on test."
    )
    return "\n".join(lines) + "\n\n" + verdict


def sources_section(shipped: dict, reports: Path) -> str:
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
    return fill(
        "sources",
        {
            "source_count": len(sources),
            "listed": listed,
            "source_tables": _source_tables(c),
            "reliability_figure": RELIABILITY_FIGURE,
            "loso_table": _loso_table(reports),
            "trust_table": _trust_table(reports),
        },
    )
