"""How well the plate detector finds the plates of photos, and the score floor chosen from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lpr.detection import MIN_SCORE, Detection, Detector, iou
from training.common.outputs import write_json
from training.data.photos import Photo, open_photos

#: Lowest and highest peak-score floors tried when the floor is chosen on validation photos. The
#: ceiling stays well under the scores of plates the detector has seen: a couple of dozen
#: validation photos cannot justify dropping every plate it is only fairly sure of.
MIN_SCORE_FLOOR = 0.2
MIN_SCORE_CEILING = 0.6
#: IoU at which a found box counts as the plate.
MATCH_IOU = 0.5


def match(found: list[Detection], truth: list[tuple[float, float, float, float]]) -> tuple[int, int]:
    """``(true positives, false positives)``: each true box matched at most once at IoU ≥ ``MATCH_IOU``."""
    left = [Detection(x0, y0, x1 - x0, y1 - y0, 1.0) for x0, y0, x1, y1 in truth]
    tp = 0
    for box in found:
        hit = next((t for t in left if iou(box, t) >= MATCH_IOU), None)
        if hit is not None:
            left.remove(hit)
            tp += 1
    return tp, len(found) - tp


def choose_min_score(detector: Detector, photos: list[Photo]) -> float:
    """The lowest peak score kept as a plate, chosen on validation photos: best F2 at IoU ≥ 0.5.

    F2 weighs recall four times precision: a missed plate is lost, while a false box is read and,
    having no plate's characters, answered doubtful. Decoded once with a low floor; each
    candidate floor (:data:`MIN_SCORE_FLOOR` to :data:`MIN_SCORE_CEILING`) then keeps the boxes
    above it; ties go to the lower floor.
    """
    found = [(detector.detect(photo.image(), MIN_SCORE_FLOOR), photo) for photo in photos]
    best, best_f2 = MIN_SCORE, -1.0
    for floor in np.round(np.arange(MIN_SCORE_FLOOR, MIN_SCORE_CEILING + 0.01, 0.05), 2):
        tp = fp = 0
        for boxes, photo in found:
            hits, misses = match([b for b in boxes if b.score >= floor], [photo.box])
            tp, fp = tp + hits, fp + misses
        recall, precision = tp / max(len(photos), 1), tp / max(tp + fp, 1)
        f2 = 5 * recall * precision / max(4 * precision + recall, 1e-9)
        if f2 > best_f2 + 1e-9:
            best, best_f2 = float(floor), f2
    return best


def detection_scores(detector: Detector, photos: list[Photo]) -> dict[str, Any]:
    """Recall and precision at IoU ≥ 0.5 on photos, through the service's detector (stored grid)."""
    tp = fp = 0
    per_photo = []
    for photo in photos:
        image = photo.image()
        found = detector.detect(image)
        hits, misses = match(found, [photo.box])
        tp, fp = tp + hits, fp + misses
        per_photo.append({"file": photo.path.name, "found": len(found), "hit": bool(hits)})
    return {
        "photos": len(photos),
        "recall": tp / len(photos) if photos else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "false_boxes": fp,
        "per_photo": per_photo,
    }


def settle(run: str | Path, data_home: str | Path) -> Path:
    """Choose the run's score floor on its validation photos and record both sides' detection figures."""
    run = Path(run)
    path = run / "model.json"
    meta = json.loads(path.read_text())
    photos = {p.path.name: p for p in open_photos(Path(data_home) / "plate-photos")}
    val = [photos[name] for name in meta["dataset"]["validation"]]
    fit = [photos[name] for name in meta["dataset"]["fit"]]
    meta["min_score"] = choose_min_score(Detector(run / "model.onnx", path), val)
    meta["min_score_rule"] = "best F2 (recall first) at IoU >= 0.5 on the validation photos, floors 0.20-0.60"
    write_json(path, meta)
    detector = Detector(run / "model.onnx", path)
    meta["validation"] = {k: v for k, v in detection_scores(detector, val).items() if k != "per_photo"}
    meta["fit_photos"] = {k: v for k, v in detection_scores(detector, fit).items() if k != "per_photo"}
    write_json(path, meta)
    return run
