"""The model card's whole-plate and whole-photo sections, from the reports ``lpr-train plates`` and
``lpr-train photos`` wrote; they are refreshed in place whenever those run
(:func:`training.reports.model_card.refresh_card`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from lpr.plate_reader import UNREADABLE
from training.common.outputs import PLATES_EVAL, PLATES_EVAL_FOREIGN, PLATES_EVAL_VAL
from training.evaluation.photo_eval import PHOTOS_FIGURE, PHOTOS_REPORT
from training.reports.template import fill, read_report

PLATES_TITLE = "## Whole plates"
PHOTOS_MARKERS = ("<!-- photos -->", "<!-- /photos -->")


# --- plates --------------------------------------------------------------------------------------


def _validation_plates_row(reports: Path) -> str:
    """The same reading of plates made of validation crops, if measured: where the recipe was chosen."""
    v = read_report(reports / PLATES_EVAL_VAL)
    if v is None:
        return ""
    return (
        f"\n| plate reader on {v['plates']} plates of the model's **validation** crops (seed {v['seed']}; "
        f"where recipes and the segmenter were chosen) | {v['whole_plate_accuracy']:.2%} | "
        f"{v['character_accuracy']:.2%} |"
    )


def plate_only_note(r: dict) -> str:
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


def _foreign_plates_section(reports: Path) -> str:
    """Plates with zone or class letters outside the twelve, from ``plates_eval_foreign.json``."""
    r = read_report(reports / PLATES_EVAL_FOREIGN)
    if r is None:
        return "\nNot measured yet on plates with other letters: `lpr-train plates --data ... --foreign 0.5`."
    rows = "\n".join(
        f"| {symbol} | {v['letters']} | {v['flagged']:.0%} | {v.get('named', 0.0):.0%} |"
        for symbol, v in r["foreign_flagged_by_symbol"].items()
    )
    shares = (
        "foreign_letters_flagged",
        "foreign_letters_named",
        "foreign_whole_plate_accuracy",
        "foreign_plates_false_confident",
        "in_class_whole_plate_accuracy",
        "false_confident_share",
    )
    return fill(
        "foreign_plates",
        {
            "count": r["count"],
            "seed": r["seed"],
            "foreign_plates": r["foreign_plates"],
            **{key: f"{r[key]:.2%}" for key in shares},
            "rows": rows,
            "command": r["command"],
        },
    )


def plates_section(reports: Path) -> str:
    """Whole plates (``POST /read-plate``), from ``plates_eval.json`` that ``lpr-train plates`` wrote."""
    r = read_report(reports / PLATES_EVAL)
    if r is None:
        return f"{PLATES_TITLE}\n\nNot measured yet: run `lpr-train plates --data ../shared/data/lpr`."
    ceiling, without = r["crop_by_crop"], r["without_format"]
    shares = (
        "whole_plate_accuracy",
        "character_accuracy",
        "best_reading_accuracy",
        "segmentation_accuracy",
        "confident_share",
        "false_confident_share",
    )
    return fill(
        "plates",
        {
            "title": PLATES_TITLE,
            **{key: r[key] for key in ("model", "plates", "one_row_plates", "two_row_plates", "characters")},
            "seed": r["seed"],
            **{key: f"{r[key]:.2%}" for key in shares},
            "without_format_whole_plate_accuracy": f"{without['whole_plate_accuracy']:.2%}",
            "without_format_character_accuracy": f"{without['character_accuracy']:.2%}",
            "ceiling_whole_plate_accuracy": f"{ceiling['whole_plate_accuracy']:.2%}",
            "ceiling_character_accuracy": f"{ceiling['character_accuracy']:.2%}",
            "validation_row": _validation_plates_row(reports),
            "ms_per_plate": f"{r['ms_per_plate_median']:.0f}",
            "bar": "meets" if r["whole_plate_accuracy"] >= 0.97 else "misses",
            "reader": r.get("reader", r["model"]),
            "crops_misread_count": len(ceiling["crops_misread"]),
            "crops_misread": ", ".join(f"`{c}`" for c in ceiling["crops_misread"]),
            "plate_only_note": plate_only_note(r),
            "command": r["command"],
            "foreign_section": _foreign_plates_section(reports),
        },
    )


# --- photos --------------------------------------------------------------------------------------


def _photo_rows(r: dict) -> list[tuple[str, int, str]]:
    det, fit, e2e = r["detection_validation"], r["detection_fitted"], r["end_to_end"]
    none, tight = r["no_plate"], r["tight_crops"]
    return [
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


def photos_section(reports: Path) -> str:
    """Whole photos (``lpr-train photos``): detection, end to end, no plate, tight crops, and the grid."""
    begin, end = PHOTOS_MARKERS
    r = read_report(Path(reports) / PHOTOS_REPORT)
    if r is None:
        return f"{begin}\n## Whole photos\n\nNot measured yet: run `lpr-train photos`.\n{end}"
    table = "\n".join(
        [
            "| set | images | figure |",
            "|---|---|---|",
            *(f"| {a} | {n} | {f} |" for a, n, f in _photo_rows(r)),
        ]
    )
    return fill(
        "photos",
        {
            "begin": begin,
            "end": end,
            "detector_version": r["detector_version"],
            "model_version": r["model_version"],
            "report": PHOTOS_REPORT,
            "table": table,
            "figure": PHOTOS_FIGURE,
        },
    )
