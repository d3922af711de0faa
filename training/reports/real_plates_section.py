"""The card's real-plates section: the served reader on plates whose text is known, per set.

From the reports ``lpr-train real-plates`` (validation, all) and
``lpr-train finder compare`` wrote; nothing here measures anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
        },
    )
