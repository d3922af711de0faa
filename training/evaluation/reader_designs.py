"""The plate-reading designs side by side, on the real validation plates (crops and whole photos).

- ``segmenter``: connected components, each glyph named by the classifier (the design replaced);
- ``finder+classifier``: the finder's boxes, each named by the crop classifier;
- ``finder``: the finder's boxes named by its own class head: one network call per plate.

The designs share everything else (the detector, the box and its margin, the
turns, the grammar), so the difference is the reader alone; each has the bars
calibrated for it (``lpr-train finder calibrate``). The validation plates
(split by bike) were never trained on by any of them; of the finder's two
namings, the one that reads more of them exactly is the one the run ships
as (:func:`choose_naming`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lpr.char_finder import CharFinder
from lpr.photo_reader import read_photo
from lpr.readers import FinderReader, PlateReader, SegmentingReader
from training.common.outputs import REPORTS, read_json, write_json
from training.data.photos import detector_dataset
from training.data.plate_texts import real_plates
from training.evaluation.photo_eval import served_classifier_and_detector
from training.evaluation.real_plates import WAYS, evaluate_plates

REPORT = "reader_designs.json"


def designs(
    run: str | Path, repository: str | Path, reports: str | Path
) -> tuple[dict[str, PlateReader], Any]:
    """The three readers, with the run's finder and the served classifier; and the detector."""
    run = Path(run)
    model, detector = served_classifier_and_detector(repository, reports)
    finder = CharFinder(run / "model.onnx", run / "record.json")
    readers: dict[str, PlateReader] = {
        "segmenter": SegmentingReader(model.run, model.metadata),
        "finder+classifier": FinderReader(finder, classify=model.run, classifier=model.metadata),
        "finder": FinderReader(finder),
    }
    return readers, detector


def compare_designs(
    run: str | Path, data_home: str | Path, repository: str | Path, reports: str | Path = REPORTS
) -> dict[str, Any]:
    """Every design over the validation plates both ways; written to ``reports/reader_designs.json``."""
    plates = real_plates(Path(data_home) / "plate-photos", detector_dataset(repository, reports))
    chosen = [p for p in plates if p.split == "validation"]
    readers, detector = designs(run, repository, reports)
    report: dict[str, Any] = {"plates": len(chosen), "run": Path(run).as_posix(), "designs": {}}
    for name, reader in readers.items():
        results = evaluate_plates(lambda data, r=reader: read_photo(data, detector, r), chosen)
        report["designs"][name] = {
            way: {k: v for k, v in results[way].items() if k != "per_plate"} for way in WAYS
        } | {"per_plate": {way: results[way]["per_plate"] for way in WAYS}}
    report["served"] = choose_naming(run, report)
    write_json(Path(reports) / REPORT, report)
    return report


#: The finder's namings by the design that names that way.
NAMING_OF = {"finder+classifier": "classifier", "finder": "finder"}


def choose_naming(run: str | Path, report: dict[str, Any]) -> str:
    """The finder design that read more held-out plates exactly (crops and photos together) is the one
    the run ships as: its ``naming`` is written into the run's record (ties go to the finder alone,
    one network call per plate)."""
    scores = {
        name: sum(report["designs"][name][way]["exact"] for way in WAYS)
        for name in ("finder", "finder+classifier")
    }
    best = max(scores, key=lambda name: (scores[name], name == "finder"))
    path = Path(run) / "record.json"
    record = read_json(path)
    record["naming"] = NAMING_OF[best]
    write_json(path, record)
    return best


def summary(report: dict[str, Any]) -> str:
    lines = [f"{report['plates']} real validation plates, read each way by each design"]
    for name, result in report["designs"].items():
        for way in WAYS:
            r = result[way]
            lines.append(
                f"{name:>18} {way:>5}: exact {r['exact']}/{r['plates']}, in-class right "
                f"{r['in_class_right']}/{r['in_class_symbols']}, confident {r['confident']}, "
                f"confident and wrong {r['confident_and_wrong']}"
            )
    return "\n".join(lines)
