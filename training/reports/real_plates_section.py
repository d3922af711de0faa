"""The card's real-plates section: the served reader on plates whose text is known, per set.

From the reports ``lpr-train real-plates`` (validation, all) and
``lpr-train finder compare`` wrote; nothing here measures anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lpr.letter_namer import LETTER_MODEL
from lpr.plate_grammar import LETTERS
from training.common.records import RECORDS
from training.evaluation.reader_designs import REPORT as DESIGNS_REPORT
from training.evaluation.real_plates import REAL_PLATES_FIGURE, report_name
from training.reports.template import fill, read_report

REAL_PLATES_TITLE = "## Real plates"


def _row(label: str, r: dict[str, Any]) -> str:
    share = r["in_class_right"] / r["in_class_symbols"] if r["in_class_symbols"] else 0.0
    return (
        f"| {label} | {r['plates']} | **{r['exact']}** | {r['in_class_right']}/{r['in_class_symbols']} "
        f"({share:.1%}) | {r['confident']} | **{r['confident_and_wrong']}** | {r['right_way_up']} |"
    )


def _sets(reports: Path) -> list[str]:
    rows = []
    held = read_report(reports / report_name("validation"))
    every = read_report(reports / report_name("all"))
    if held:
        rows += [_row("held-out plates, cut at their box", held["crop"])]
        rows += [_row("the same plates, whole photos", held["photo"])]
    if every:
        rows += [_row("every transcribed plate (fitted bikes included), cut at its box", every["crop"])]
        rows += [_row("every transcribed plate, whole photos", every["photo"])]
    return rows


def _designs(reports: Path) -> str:
    report = read_report(reports / DESIGNS_REPORT)
    if report is None:
        return "Not compared yet: run `lpr-train finder compare --run runs/finder`."
    lines = ["| design | crops exact | crops in-class right | photos exact | photos in-class right |"]
    lines.append("|---|---|---|---|---|")
    for name, result in report["designs"].items():
        crop, photo = result["crop"], result["photo"]
        cells = [
            f"{crop['exact']}/{crop['plates']}",
            f"{crop['in_class_right']}/{crop['in_class_symbols']}",
            f"{photo['exact']}/{photo['plates']}",
            f"{photo['in_class_right']}/{photo['in_class_symbols']}",
        ]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _failures(reports: Path) -> str:
    held = read_report(reports / report_name("validation"))
    if held is None:
        return ""
    wrong = [r for r in held["crop"]["per_plate"] if not r["exact"]]
    if not wrong:
        return "Every held-out crop was read exactly."
    lines = ["Held-out crops not read exactly (truth as the reader must answer it; `_` scores nothing):", ""]
    lines += [f"- `{r['file']}`: `{' '.join(r['expected'])}` read `{' '.join(r['read'])}`" for r in wrong]
    return "\n".join(lines)


def _zone_letters(reports: Path) -> list[str]:
    held = read_report(reports / report_name("validation"))
    rows = [
        "| held-out plates | zone | plates | named right | answered ? | named wrongly |",
        "|---|---|---|---|---|---|",
    ]
    for way in ("crop", "photo"):
        for zone, z in (held or {}).get(way, {}).get("zone_letters", {}).items():
            glyph = LETTERS.get(zone, zone)
            cells = f"{z['plates']} | **{z['named_right']}** | {z['unread']} | **{z['named_wrongly']}**"
            rows.append(f"| {way} | {glyph} | {cells} |")
    return rows


def _letter_record(reports: Path) -> dict[str, Any] | None:
    """The newest letter model's record beside the card, if one was shipped."""
    folder = reports / RECORDS / LETTER_MODEL
    found = sorted(folder.glob("*.json"), key=lambda p: tuple(int(x) for x in p.stem.split(".")))
    return read_report(found[-1]) if found else None


def _per_letter(record: dict[str, Any]) -> list[str]:
    calibration = record["calibration"]
    val, test = calibration["validation"]["per_letter"], calibration["test"]["per_letter"]
    rows = [
        "| letter | bar | validation crops (real paint + rendered) | validation right | named at its bar "
        "| held-out real crops | named right | named wrongly |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, bar in calibration["letter_thresholds"].items():
        v, t = val.get(label), test.get(label)
        real = sum(n for source, n in v["sources"].items() if source != "rendered") if v else 0
        held = f"{t['n']} | {round(t['named'] * t['n'])} | {t['named_wrongly']}" if t else "0 | – | –"
        cells = f"{real} + {v['n'] - real} | {v['accuracy']:.1%} | {v['named']:.1%}" if v else "0 | – | –"
        rows.append(f"| {LETTERS[label]} | {bar:.4f} | {cells} | {held} |")
    return rows


def letters_section(reports: Path) -> str:
    """The zone letters named on the held-out plates, and the letter model's per-letter table."""
    record = _letter_record(reports)
    if record is None:
        return "Not shipped yet: run `lpr-train letters train` and `ship`."
    return fill(
        "letters",
        {
            "model": f"{record['name']} {record['version']}",
            "zones": "\n".join(_zone_letters(reports)),
            "per_letter": "\n".join(_per_letter(record)),
            "temperature": f"{record['calibration']['temperature']:.4f}",
            "rule": record["calibration"]["rule"],
        },
    )


def real_plates_section(reports: Path) -> str:
    reports = Path(reports)
    held = read_report(reports / report_name("validation"))
    if held is None:
        return f"{REAL_PLATES_TITLE}\n\nNot measured yet: run `lpr-train real-plates`."
    return fill(
        "real_plates",
        {
            "title": REAL_PLATES_TITLE,
            "reader": held["model_version"],
            "detector": held["detector_version"],
            "table": "\n".join(
                [
                    "| set | plates | read exactly | in-class symbols right in place | confident "
                    "| confident and wrong | right way up |",
                    "|---|---|---|---|---|---|---|",
                    *_sets(reports),
                ]
            ),
            "designs": _designs(reports),
            "figure": REAL_PLATES_FIGURE,
            "failures": _failures(reports),
            "letters": letters_section(reports),
        },
    )
