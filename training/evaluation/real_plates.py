"""``lpr-train real-plates``: the served reader on real plates whose text is known, two ways.

Synthetic plates are composed from clean crops; real plates are painted by
hand, worn, bolted and seen at an angle, and that is where users live. Each
transcribed plate of ``plate-photos/`` (:mod:`training.data.plate_texts`) is
read through :func:`lpr.photo_reader.read_photo`, the service's own path,
with the served character finder and the shipped detector:

* **crop**: the plate cut at its labelled box from the upright photo, sent as
  a PNG file: a tight crop, as a user who cut the plate out would send it
  (the service finds it filling the image and chooses its quarter turn);
* **photo**: the whole photo's bytes, as ``/read-plate`` receives them.

Scored per plate against the grammar's symbols, in reading order (rows
concatenated): **exact** when every symbol is right in its place, a zone or
class letter outside the model's twelve answered ``?`` counting as right and
an unreadable ``_`` of the truth scoring nothing; **in-class symbols right**
counts, over the symbols the reader could name, those read right in the same
place of a reading with as many characters as the plate (a character lost or
added moves every place); **confident and wrong** counts the plates a parking
system would store wrongly, the figure that matters most.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from lpr.photo_reader import PhotoReading
from lpr.plate_grammar import LETTER_SLOTS
from lpr.plate_reader import UNREADABLE
from training.common.outputs import REPORTS, figures_dir, write_json
from training.data.photos import Photo, detector_dataset
from training.data.plate_texts import SPLITS, RealPlate, Symbol, reads_exactly, real_plates
from training.evaluation.photo_eval import reader, served_models, upright_box
from training.evaluation.plates import served_plate_reader

#: ``reports/real_plates_eval.json`` for the held-out plates, ``real_plates_eval_<split>.json`` otherwise.
REAL_PLATES_REPORT = "real_plates_eval.json"
REAL_PLATES_FIGURE = "real_plates_examples.png"
#: ``--split``: one of the plates' splits, or every transcribed plate.
CHOICES = ("validation", "fit", "all")
#: The two ways a plate is read: its tight crop, its whole photo.
WAYS = ("crop", "photo")


def report_name(split: str) -> str:
    return (
        REAL_PLATES_REPORT if split == "validation" else REAL_PLATES_REPORT.replace(".json", f"_{split}.json")
    )


def crop_bytes(photo: Photo) -> bytes:
    """The plate cut at its labelled box from the upright (EXIF-turned) photo, as a PNG file."""
    with Image.open(photo.path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    box = upright_box(photo)
    crop = upright.crop((box.x, box.y, box.x + box.width, box.y + box.height))
    buffer = io.BytesIO()
    crop.save(buffer, "PNG")
    return buffer.getvalue()


def photo_bytes(photo: Photo) -> bytes:
    return photo.path.read_bytes()


def score(symbols: Sequence[Symbol], read: Sequence[str]) -> tuple[bool, int, int]:
    """``(exact, in-class symbols, in-class symbols read right in their place)`` of one plate.

    Exact: every symbol right in its place, a letter outside the twelve named or
    answered ``?`` (:meth:`Symbol.accepts`). A place is a position in a reading of
    the plate's length: a reading with a character missing or one too many has
    every symbol out of place (whether its first or its last symbols line up is chance).
    """
    same_length = len(read) == len(symbols)
    exact = reads_exactly(symbols, read)
    named = [(i, s.label) for i, s in enumerate(symbols) if s.in_class]
    right = sum(read[i] == label for i, label in named) if same_length else 0
    return exact, len(named), right


def _verdict(truth: str, answer: str) -> str:
    """A letter's answer against its truth: ``named_right``, ``unread`` (``?``) or ``named_wrongly``."""
    return "named_right" if answer == truth else "unread" if answer == UNREADABLE else "named_wrongly"


def letters_named(symbols: Sequence[Symbol], read: Sequence[str]) -> dict[str, int]:
    """The plate's zone and class letters (where read by eye): named right, answered ``?``, named
    wrongly; a reading of another length names none in place."""
    counts = {"letters": 0, "named_right": 0, "unread": 0, "named_wrongly": 0}
    same_length = len(read) == len(symbols)
    for i, symbol in enumerate(symbols):
        if symbol.slot not in LETTER_SLOTS or symbol.label is None:
            continue
        counts["letters"] += 1
        counts[_verdict(symbol.label, read[i] if same_length else UNREADABLE)] += 1
    return counts


def _row(plate: RealPlate, reading: PhotoReading) -> dict[str, Any]:
    best = reading.plates[0] if reading.plates else None
    read = [label for row in best.reading.labels for label in row] if best else []
    exact, in_class, right = score(plate.symbols, read)
    zone = plate.symbols[0]
    return {
        "file": plate.name,
        "split": plate.split,
        "truth": plate.text,
        "expected": [s.expected or "_" for s in plate.symbols],
        "read": read,
        "read_text": best.reading.text if best else None,
        "exact": exact,
        "in_class_symbols": in_class,
        "in_class_right": right,
        "zone": zone.label,
        "zone_read": read[0] if len(read) == len(plate.symbols) else None,
        "letters": letters_named(plate.symbols, read),
        "confident": bool(best and best.reading.confident),
        "rotation": best.rotation if best else None,
    }


def read_way(
    read: Callable[[bytes], PhotoReading], plates: Sequence[RealPlate], to_bytes: Callable[[Photo], bytes]
) -> dict[str, Any]:
    """Every plate read from ``to_bytes`` of its photo: the totals and a row per plate."""
    rows = [_row(plate, read(to_bytes(plate.photo))) for plate in plates]
    return {
        "plates": len(rows),
        "exact": sum(r["exact"] for r in rows),
        "in_class_symbols": sum(r["in_class_symbols"] for r in rows),
        "in_class_right": sum(r["in_class_right"] for r in rows),
        "confident": sum(r["confident"] for r in rows),
        "confident_and_wrong": sum(r["confident"] and not r["exact"] for r in rows),
        "zone_letters": _zones(rows),
        "letters": {k: sum(r["letters"][k] for r in rows) for k in rows[0]["letters"]} if rows else {},
        "confident_with_a_wrong_letter": sum(
            r["confident"] and r["letters"]["named_wrongly"] > 0 for r in rows
        ),
        "no_plate_found": sum(r["read_text"] is None for r in rows),
        # Read the right way up, as far as the text tells: at least half its in-class symbols right in
        # place (a plate read upside down or sideways gets next to none).
        "right_way_up": sum(2 * r["in_class_right"] >= r["in_class_symbols"] > 0 for r in rows),
        "per_plate": rows,
    }


def _zones(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per zone letter of the truth: plates, zone named right, answered ``?``, named wrongly."""
    zones: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["zone"] is None:
            continue
        z = zones.setdefault(r["zone"], {"plates": 0, "named_right": 0, "unread": 0, "named_wrongly": 0})
        z["plates"] += 1
        z[_verdict(r["zone"], r["zone_read"] or UNREADABLE)] += 1
    return dict(sorted(zones.items()))


def served_reader(
    repository: str | Path, reports: str | Path = REPORTS
) -> tuple[Callable[[bytes], PhotoReading], dict[str, str]]:
    """``read_photo`` with the served classifier and the shipped detector, and their versions."""
    model, detector, finder = served_models(repository, reports)
    versions = {"model": finder.metadata.model_version, "detector": detector.metadata.version}
    return reader(detector, served_plate_reader(finder, model, repository)), versions


def evaluate_plates(read: Callable[[bytes], PhotoReading], plates: Sequence[RealPlate]) -> dict[str, Any]:
    """Both ways over ``plates``."""
    ways = {"crop": crop_bytes, "photo": photo_bytes}
    return {way: read_way(read, plates, ways[way]) for way in WAYS}


def run_real_plates(
    data_home: str | Path,
    repository: str | Path,
    reports: str | Path = REPORTS,
    split: str = "validation",
) -> dict[str, Any]:
    """Read the split's real plates both ways; written to :func:`report_name` in ``reports``."""
    if split not in CHOICES:
        raise ValueError(f"split must be one of {CHOICES}, not {split!r}")
    reports = Path(reports)
    plates = real_plates(Path(data_home) / "plate-photos", detector_dataset(repository, reports))
    chosen = [p for p in plates if split == "all" or p.split == split]
    read, versions = served_reader(repository, reports)
    report = {
        "split": split,
        "model_version": versions["model"],
        "detector_version": versions["detector"],
        "plates": len(chosen),
        "distinct_texts": len({p.text for p in chosen}),
        "by_split": {s: sum(p.split == s for p in chosen) for s in SPLITS},
        **evaluate_plates(read, chosen),
    }
    reports.mkdir(parents=True, exist_ok=True)
    write_json(reports / report_name(split), report)
    if split == "validation":
        real_plates_figure(read, chosen, figures_dir(reports) / REAL_PLATES_FIGURE)
    return report


def real_plates_figure(
    read: Callable[[bytes], PhotoReading], plates: Sequence[RealPlate], out: Path, shown: int = 12
) -> Path:
    """Held-out plate crops turned the way the reader read them, its boxes and its reading; failures first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows_read = [(plate, read(crop_bytes(plate.photo))) for plate in plates]
    scored = [(plate, reading, _row(plate, reading)) for plate, reading in rows_read]
    ordered = [s for s in scored if not s[2]["exact"]] + [s for s in scored if s[2]["exact"]]
    chosen = ordered[:shown]
    columns = 4
    grid = (len(chosen) + columns - 1) // columns
    fig, axes = plt.subplots(grid, columns, figsize=(4 * columns, 3.4 * grid), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (plate, reading, row) in zip(axes.ravel(), chosen, strict=False):
        with Image.open(io.BytesIO(crop_bytes(plate.photo))) as image:
            ax.imshow(image.convert("RGB"))
        best = reading.plates[0] if reading.plates else None
        for character in best.reading.characters if best else []:
            x, y, w, h = character.box
            colour = "lime" if not character.unknown else "orange"
            ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=1.2))
        mark = "exact" if row["exact"] else "WRONG"
        confident = ", confident" if row["confident"] else ""
        ax.set_title(
            f"{mark}{confident}\ntrue {' '.join(row['expected'])}\nread {' '.join(row['read'])}",
            fontsize=8,
            family="monospace",
        )
    fig.suptitle("Held-out real plates (crops at their box): characters found and read; failures first")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def summary(report: dict[str, Any]) -> str:
    """One line per way: plates exact, in-class symbols right in place, confident, confident and wrong."""
    lines = [
        f"{report['model_version']} + detector {report['detector_version']}, real plates "
        f"({report['split']}): {report['plates']} photos, {report['distinct_texts']} distinct texts"
    ]
    for way in WAYS:
        r = report[way]
        share = r["in_class_right"] / r["in_class_symbols"] if r["in_class_symbols"] else 0.0
        lines.append(
            f"{way:>5}: exact {r['exact']}/{r['plates']}, in-class symbols right in place "
            f"{r['in_class_right']}/{r['in_class_symbols']} ({share:.0%}), confident {r['confident']}, "
            f"confident and wrong {r['confident_and_wrong']}, no plate found {r['no_plate_found']}, "
            f"right way up {r['right_way_up']}"
        )
    return "\n".join(lines)
