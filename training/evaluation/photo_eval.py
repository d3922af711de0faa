"""``lpr-train photos``: whole photos through the service's own path, measured.

Everything goes through :func:`lpr.photo_reader.read_photo` on the files'
bytes, as ``/read-plate`` receives them (EXIF honoured, reduced JPEG decode),
with the shipped detector and classifier. Reported:

* **detection**: recall and precision at IoU ≥ 0.5 on the detector's
  validation photos (never fitted; whole plate groups), and on the fitted ones
  for contrast;
* **end to end**: photos whose text is known (``text.json``), read exactly,
  where a zone or class letter outside the twelve must come back ``?``;
  confident answers and confident wrong answers;
* **no plate**: views of every photo away from its plate, and plain
  synthetic scenes; the share answered with a plate, and with a *confident*
  plate (what a parking system would store);
* **tight crops**: synthetic plates from the LPR test crops, which must come
  back as one plate filling the image and read as the crop reader reads them.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from lpr.char_finder import CharFinder
from lpr.detection import DETECTOR_MODEL, Detection, Detector
from lpr.model import Model
from lpr.photo_reader import PhotoReading, read_photo, read_tight
from lpr.readers import PlateReader
from lpr.repository import locate
from training.common.outputs import REPORTS, figures_dir, write_json
from training.data.photos import Photo, detector_dataset, open_photos
from training.data.plate_texts import parse_text, reads_exactly
from training.evaluation.detection import match

PHOTOS_REPORT = "photos_eval.json"
PHOTOS_FIGURE = "photos_examples.png"
#: EXIF orientation → the transpose that makes the stored pixels upright (as ``ImageOps.exif_transpose``).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright_box(photo: Photo) -> Detection:
    """The photo's plate box in the upright image (its stored box turned by the EXIF orientation)."""
    with Image.open(photo.path) as image:
        orientation = image.getexif().get(0x0112, 1)
        size = image.size
    mask = Image.new("L", size, 0)
    mask.paste(255, tuple(round(v) for v in photo.box))
    if orientation in _TRANSPOSE:
        mask = mask.transpose(_TRANSPOSE[orientation])
    x0, y0, x1, y1 = mask.getbbox()
    return Detection(x0, y0, x1 - x0, y1 - y0, 1.0)


def served_classifier_and_detector(
    repository: str | Path, reports: str | Path = REPORTS
) -> tuple[Model, Detector]:
    """The served classifier (:func:`training.evaluation.plates.served_files`) and the shipped detector."""
    from training.evaluation.plates import served_files

    files = served_files(repository, reports)
    detector = locate(Path(repository), DETECTOR_MODEL)
    return Model(files.onnx, files.metadata), Detector(detector.onnx, detector.metadata)


def served_models(
    repository: str | Path, reports: str | Path = REPORTS
) -> tuple[Model, Detector, CharFinder]:
    """The served classifier, the shipped detector and the newest character finder."""
    from training.evaluation.plates import served_finder

    return (*served_classifier_and_detector(repository, reports), served_finder(repository))


def reader(detector: Detector, plates: PlateReader) -> Callable[[bytes], PhotoReading]:
    """A photo's bytes read as ``POST /read-plate`` reads them (:func:`lpr.photo_reader.read_photo`)."""

    def read(data: bytes) -> PhotoReading:
        return read_photo(data, detector, plates)

    return read


def _boxes(reading: PhotoReading) -> list[Detection]:
    return [Detection(*plate.box, plate.score) for plate in reading.plates]


def _detection(read: Callable[[bytes], PhotoReading], photos: list[Photo]) -> dict[str, Any]:
    hits = found = 0
    missed = []
    for photo in photos:
        boxes = _boxes(read(photo.path.read_bytes()))
        truth = upright_box(photo)
        hit, _ = match(boxes, [(truth.x, truth.y, truth.x + truth.width, truth.y + truth.height)])
        hits += hit
        found += len(boxes)
        if not hit:
            missed.append(photo.path.name)
    return {
        "photos": len(photos),
        "recall": hits / len(photos) if photos else 0.0,
        "precision": hits / found if found else 0.0,
        "boxes": found,
        "missed": missed,
    }


def _end_to_end(
    read: Callable[[bytes], PhotoReading], photos: list[Photo], fitted: set[str]
) -> dict[str, Any]:
    rows = []
    for photo in photos:
        reading = read(photo.path.read_bytes())
        best = reading.plates[0] if reading.plates else None
        labels = [label for row in best.reading.labels for label in row] if best else []
        symbols = parse_text(photo.text or "")
        rows.append(
            {
                "file": photo.path.name,
                "detector_fitted_on_it": photo.path.name in fitted,
                "truth": photo.text,
                "expected": [s.expected or "_" for s in symbols],
                "read": labels,
                "exact": reads_exactly(symbols, labels),
                "confident": bool(best and best.reading.confident),
            }
        )
    exact = sum(r["exact"] for r in rows)
    confident_wrong = sum(r["confident"] and not r["exact"] for r in rows)
    held = [r for r in rows if not r["detector_fitted_on_it"]]
    return {
        "photos": len(rows),
        "exact": exact,
        "confident": sum(r["confident"] for r in rows),
        "confident_and_wrong": confident_wrong,
        "held_out_photos": len(held),
        "held_out_exact": sum(r["exact"] for r in held),
        "per_photo": rows,
    }


def no_plate_views(photos: list[Photo], seed: int) -> list[Image.Image]:
    """Scenes without a plate: each photo's largest strip beside its plate, and plain synthetic scenes."""
    views = []
    for photo in photos:
        image = photo.image()
        x0, y0, x1, y1 = photo.box
        strips = [(0, 0, x0, image.height), (x1, 0, image.width, image.height)]
        strips += [(0, 0, image.width, y0), (0, y1, image.width, image.height)]
        left, top, right, bottom = max(strips, key=lambda s: (s[2] - s[0]) * (s[3] - s[1]))
        if min(right - left, bottom - top) >= 64:
            views.append(image.crop((round(left), round(top), round(right), round(bottom))))
    rng = np.random.default_rng(seed)
    for _ in range(40):
        h, w = int(rng.integers(240, 900)), int(rng.integers(240, 900))
        base = rng.uniform(0, 255, size=3)
        ramp = np.linspace(0, 1, w)[None, :, None] * rng.uniform(-80, 80, size=3)
        pixels = base + ramp + rng.normal(0, rng.uniform(2, 25), size=(h, w, 3))
        views.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return views


def _no_plate(read: Callable[[bytes], PhotoReading], views: list[Image.Image]) -> dict[str, Any]:
    with_plate = confident = 0
    for view in views:
        buffer = io.BytesIO()
        view.save(buffer, "JPEG", quality=90)
        reading = read(buffer.getvalue())
        with_plate += bool(reading.plates)
        confident += any(plate.reading.confident for plate in reading.plates)
    n = len(views)
    return {
        "images": n,
        "answered_with_a_plate": with_plate / n if n else 0.0,
        "answered_with_a_confident_plate": confident / n if n else 0.0,
    }


def _tight_crops(
    read: Callable[[bytes], PhotoReading], plates_reader: PlateReader, data_home: Path, count: int
) -> dict[str, Any]:
    from training.synthesis.plates import generate_plates

    whole = same = 0
    plates = list(generate_plates(data_home / "lpr" / "test", count=count))
    for plate in plates:
        buffer = io.BytesIO()
        plate.image.save(buffer, "PNG")
        reading = read(buffer.getvalue())
        _, crop = read_tight(plate.image, plates_reader)
        first = reading.plates[0] if reading.plates else None
        whole += bool(first and first.box == (0, 0, plate.image.width, plate.image.height))
        same += bool(first and first.reading.labels == crop.labels)
    return {
        "plates": len(plates),
        "found_as_the_whole_image": whole / len(plates),
        "read_as_the_crop_reader_reads_it": same / len(plates),
    }


def photos_figure(
    read: Callable[[bytes], PhotoReading], photos: list[Photo], out: Path, shown: int = 12
) -> Path:
    """Held-out photos with the boxes found (green: confident, orange: doubtful) and their readings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    chosen = photos[:shown]
    columns = 4
    rows = (len(chosen) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, photo in zip(axes.ravel(), chosen, strict=False):
        with Image.open(photo.path) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
        reading = read(photo.path.read_bytes())
        ax.imshow(upright)
        titles = []
        for plate in reading.plates:
            x, y, w, h = plate.box
            colour = "lime" if plate.reading.confident else "orange"
            ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=2))
            labels = " / ".join(" ".join(row) for row in plate.reading.labels) or "(no characters)"
            titles.append(f"{plate.score:.2f} {labels}")
        ax.set_title("\n".join(titles[:2]) or "no plate", fontsize=8, family="monospace")
    fig.suptitle("Held-out photos: plates found (green confident, orange doubtful) and their readings")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def run_photo_eval(
    data_home: str | Path,
    repository: str | Path,
    reports: str | Path = REPORTS,
    seed: int = 7,
    tight: int = 100,
) -> dict[str, Any]:
    """Every figure of the module docstring, written to ``reports/photos_eval.json`` with the figure."""
    data_home, reports = Path(data_home), Path(reports)
    model, detector, finder = served_models(repository, reports)
    from training.evaluation.plates import served_plate_reader

    plates_reader = served_plate_reader(finder, model, repository)
    read = reader(detector, plates_reader)
    photos = open_photos(data_home / "plate-photos")
    split = detector_dataset(repository, reports)
    fitted = set(split["fit"])
    val = [p for p in photos if p.path.name in set(split["validation"])]
    fit = [p for p in photos if p.path.name in fitted]
    report = {
        "model_version": finder.metadata.model_version,
        "detector_version": detector.metadata.model_version,
        "detection_validation": _detection(read, val),
        "detection_fitted": {k: v for k, v in _detection(read, fit).items() if k != "missed"},
        "end_to_end": _end_to_end(read, [p for p in photos if p.text], fitted),
        "no_plate": _no_plate(read, no_plate_views(val, seed)),
        "tight_crops": _tight_crops(read, plates_reader, data_home, tight),
    }
    reports.mkdir(parents=True, exist_ok=True)
    write_json(reports / PHOTOS_REPORT, report)
    photos_figure(read, val, figures_dir(reports) / PHOTOS_FIGURE)
    return report


def summary(report: dict[str, Any]) -> str:
    """The report's figures for the command line, one line per set."""
    det, e2e = report["detection_validation"], report["end_to_end"]
    none, tight = report["no_plate"], report["tight_crops"]
    return "\n".join(
        [
            f"{report['detector_version']} + {report['model_version']}: held-out photos {det['photos']}, "
            f"plates found at IoU >= 0.5 {det['recall']:.4f}, precision {det['precision']:.4f}",
            f"photos with known text {e2e['photos']}: read exactly {e2e['exact']} "
            f"({e2e['held_out_exact']} of {e2e['held_out_photos']} the detector never saw), confident "
            f"{e2e['confident']}, confident and wrong {e2e['confident_and_wrong']}",
            f"{none['images']} images without a plate: answered with a plate "
            f"{none['answered_with_a_plate']:.4f}, with a confident plate "
            f"{none['answered_with_a_confident_plate']:.4f}",
            f"{tight['plates']} tight plate crops: found as the whole image "
            f"{tight['found_as_the_whole_image']:.4f}, read as the crop reader reads them "
            f"{tight['read_as_the_crop_reader_reads_it']:.4f}",
        ]
    )
