"""Whole photos: the detector's shared encoding, the photo split, and ``POST /read-plate`` on photos.

What a user relies on: a camera frame comes back with a box per plate (in
the upright image's pixels, EXIF honoured), a frame without a plate comes
back ``plates: []`` with a reason, a tight crop is still one plate filling
the image, and the validation photos are ones the detector never saw.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import SHARED, TEST_CROPS, make_client
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from lpr.detection import DETECTOR_MODEL, HEAD, Detection, DetectorSpec, decode, iou, letterbox
from lpr.photo_reader import ZOOM_UP_DOWN, _box_mapper, _unturn, _zoom
from lpr.plate_reader import Box
from lpr.repository import DEFAULT_REPOSITORY, locate
from service.plate_schemas import PlateReading
from training.common.records import load_record
from training.data.photos import open_photos, plate_groups, split_photos
from training.data.plate_texts import parse_text, reads_exactly
from training.evaluation.photo_eval import upright_box
from training.synthesis.plates import generate_plates
from training.synthesis.scenes import SceneMaker, targets

PHOTOS = SHARED / "data" / "plate-photos"


@pytest.fixture(scope="module")
def photos():
    return open_photos(PHOTOS)


@pytest.fixture(scope="module")
def detector_meta() -> dict:
    return load_record(locate(DEFAULT_REPOSITORY, DETECTOR_MODEL))


@pytest.fixture(scope="module")
def held_out(photos, detector_meta):
    """The shipped detector's validation photos: never fitted."""
    names = set(detector_meta["dataset"]["validation"])
    return [p for p in photos if p.path.name in names]


def jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def upload(data: bytes, name: str = "photo.jpg") -> dict:
    return {"files": {"file": (name, data, "image/jpeg")}}


def as_detection(box: dict) -> Detection:
    return Detection(box["x"], box["y"], box["width"], box["height"], 1.0)


# -- the detector's encoding, shared by training and the service ---------------------------------


def test_training_targets_decode_back_to_their_boxes() -> None:
    """What training teaches the head is what the service's decoder reads: boxes survive the round trip."""
    spec = DetectorSpec()
    boxes = [(20.0, 30.0, 100.0, 90.0), (150.0, 140.0, 240.0, 250.0)]
    target = targets(boxes, spec)
    head = np.zeros((spec.grid, spec.grid, len(HEAD)), dtype=np.float32)
    head[..., 0] = np.where(target[..., 0] >= 1.0, 6.0, np.log(np.maximum(target[..., 0], 1e-6) / 2))
    head[..., 1:5] = target[..., 1:5]
    found = decode(head, spec, scale=0.5)
    assert len(found) == 2
    for box in boxes:
        truth = Detection(box[0] * 2, box[1] * 2, (box[2] - box[0]) * 2, (box[3] - box[1]) * 2, 1.0)
        assert max(iou(f, truth) for f in found) > 0.99


def test_decoder_keeps_the_stronger_of_two_overlapping_boxes_and_nothing_below_the_floor() -> None:
    spec = DetectorSpec()
    head = np.full((spec.grid, spec.grid, len(HEAD)), -8.0, dtype=np.float32)
    head[..., 1:3] = 0.5
    head[..., 3:5] = np.log(0.3)
    head[5, 5, 0], head[5, 7, 0] = 3.0, 2.0  # two peaks whose 77 px boxes overlap heavily
    head[12, 12, 0] = -2.0  # 0.12: below the floor
    found = decode(head, spec)
    assert len(found) == 1 and found[0].score == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert decode(np.full_like(head, -8.0), spec) == []


def test_letterbox_keeps_the_aspect_and_says_how_it_scaled() -> None:
    spec = DetectorSpec()
    square, scale = letterbox(Image.new("RGB", (1024, 512), (200, 30, 40)), spec)
    assert square.shape == (spec.side, spec.side, 3) and scale == spec.side / 1024
    assert np.allclose(square[0, 0], np.array([200, 30, 40]) / 255, atol=0.01)
    assert np.allclose(square[-1, -1], 114 / 255, atol=0.01)  # padding below, never plate red


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_a_box_read_in_a_turned_crop_maps_back_to_the_image(rotation: int) -> None:
    """A character found in a sideways photo's turned crop is boxed where it is in the upright image."""
    image = Image.new("L", (300, 200), 0)
    ImageDraw.Draw(image).rectangle([40, 120, 69, 179], fill=255)  # x 40..69, y 120..179
    turned = image.rotate(rotation, expand=True)
    x0, y0, x1, y1 = turned.getbbox()
    # The crop sat at (250, 50) of an image decoded at half size: (500, 100) in full-size pixels.
    to_image = _box_mapper(lambda p: _unturn(p, rotation, image.width, image.height), (250, 50), 0.5)
    box = to_image(Box(x0, y0, x1 - x0, y1 - y0))
    assert box == Box(500 + 80, 100 + 240, 60, 120)


# -- the photos and their split ------------------------------------------------------------------


def test_photos_of_one_plate_never_straddle_the_split(photos) -> None:
    groups = plate_groups(photos)
    fit, val = split_photos(photos, seed=1234)
    assert sorted(fit + val) == list(range(len(photos))) and not set(fit) & set(val)
    assert not {groups[i] for i in fit} & {groups[i] for i in val}
    by_stem: dict[str, set[int]] = {}
    for photo, group in zip(photos, groups, strict=True):
        by_stem.setdefault(photo.path.stem.split("-")[0], set()).add(int(group))
    assert all(len(ids) == 1 for ids in by_stem.values())  # x.jpg and x-1.jpg: one plate
    texts: dict[str, set[int]] = {}
    for photo, group in zip(photos, groups, strict=True):
        if photo.text:
            texts.setdefault(photo.text, set()).add(int(group))
    assert all(len(ids) == 1 for ids in texts.values())  # the same plate text: one group
    assert split_photos(photos, seed=1234) == (fit, val)


def test_the_shipped_detector_records_its_split(photos, detector_meta) -> None:
    record = detector_meta["dataset"]
    fit, val = split_photos(photos, seed=detector_meta["seed"])
    assert record["fit"] == [photos[i].path.name for i in fit]
    assert record["validation"] == [photos[i].path.name for i in val]


def test_training_scenes_are_seeded_and_their_boxes_lie_inside(photos) -> None:
    spec = DetectorSpec()
    synthetic = [p.image for p in generate_plates(TEST_CROPS, count=3, seed=1)]
    maker = SceneMaker(photos[:6], synthetic, spec)
    first = maker.scene(np.random.default_rng(3))
    again = maker.scene(np.random.default_rng(3))
    assert np.array_equal(first[0], again[0]) and first[1] == again[1]
    rng = np.random.default_rng(4)
    for _ in range(20):
        square, boxes = maker.scene(rng)
        assert square.shape == (spec.side, spec.side, 3)
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= spec.side and 0 <= y0 < y1 <= spec.side


def test_known_texts_are_read_exactly_with_their_letters_named_or_unread() -> None:
    koshi = parse_text("को३५प६२१३")
    assert reads_exactly(koshi, ["ko", "3", "5", "pa", "6", "2", "1", "3"])
    assert reads_exactly(koshi, ["?", "3", "5", "pa", "6", "2", "1", "3"])
    assert not reads_exactly(koshi, ["ka", "3", "5", "pa", "6", "2", "1", "3"])  # another zone is wrong
    assert not reads_exactly(parse_text("बा८७प८७१६"), ["?", "8", "7", "pa", "8", "7", "1", "6"])


def test_the_truth_box_follows_the_exif_orientation(photos, tmp_path) -> None:
    photo = photos[0]
    image = photo.image()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored lying on its side: shown turned 90° clockwise
    path = tmp_path / photo.path.name
    image.save(path, "JPEG", exif=exif)
    turned = type(photo)(path, photo.box, photo.text)
    x0, y0, x1, y1 = photo.box
    box = upright_box(turned)
    assert (box.width, box.height) == pytest.approx((y1 - y0, x1 - x0), abs=1.5)
    assert box.x == pytest.approx(image.height - y1, abs=1.5) and box.y == pytest.approx(x0, abs=1.5)


# -- POST /read-plate on photos ------------------------------------------------------------------


def test_a_held_out_photo_comes_back_with_its_plate_boxed(client: TestClient, held_out) -> None:
    hits = 0
    for photo in held_out[:6]:
        body = client.post("/read-plate", **upload(photo.path.read_bytes(), photo.path.name)).json()
        PlateReading.model_validate(body)
        assert body["image"] == dict(zip(("width", "height"), photo.image().size, strict=True))
        assert body["detector_version"].startswith(DETECTOR_MODEL)
        boxes = [as_detection(p["box"]) for p in body["plates"]]
        truth = upright_box(photo)
        hits += any(iou(box, truth) >= 0.5 for box in boxes)
        if body["plates"]:  # the top level is the best plate's reading
            assert body["text"] == body["plates"][0]["text"]
            for row in body["plates"][0]["rows"]:
                for char in row["characters"]:  # character boxes lie inside the photo
                    b = char["box"]
                    assert b["x"] + b["width"] <= body["image"]["width"] + 1
                    assert b["y"] + b["height"] <= body["image"]["height"] + 1
    # The detector's own box (88 % of held-out plates at IoU >= 0.5 in `lpr-train photos`).
    assert hits >= 4, hits


def test_exif_rotation_is_applied_before_finding_the_plate(client: TestClient, held_out) -> None:
    """A photo stored on its side with an orientation tag: boxes are in the upright image's pixels."""
    photo = held_out[0]
    upright = photo.image()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone writes, with tag 6 to undo it
    exif = Image.Exif()
    exif[0x0112] = 6
    plain = client.post("/read-plate", **upload(jpeg(upright))).json()
    tagged = client.post("/read-plate", **upload(jpeg(stored, exif=exif))).json()
    assert tagged["image"] == {"width": upright.width, "height": upright.height}
    assert plain["plates"] and tagged["plates"]
    assert iou(as_detection(plain["plates"][0]["box"]), as_detection(tagged["plates"][0]["box"])) > 0.7


def test_two_plates_in_one_frame_are_both_found(client: TestClient, held_out) -> None:
    a, b = held_out[0], held_out[1]
    left, right = a.image(), b.image()
    right = right.resize((round(right.width * left.height / right.height), left.height))
    frame = Image.new("RGB", (left.width + right.width, left.height))
    frame.paste(left, (0, 0))
    frame.paste(right, (left.width, 0))
    body = client.post("/read-plate", **upload(jpeg(frame))).json()
    boxes = [as_detection(p["box"]) for p in body["plates"]]
    truth_a = upright_box(a)
    sx = right.width / b.image().width
    bx0, by0, bx1, by1 = b.box
    truth_b = Detection(left.width + bx0 * sx, by0 * sx, (bx1 - bx0) * sx, (by1 - by0) * sx, 1.0)
    assert any(iou(box, truth_a) >= 0.5 for box in boxes), boxes
    assert any(iou(box, truth_b) >= 0.5 for box in boxes), boxes
    scores = [p["score"] for p in body["plates"]]
    assert scores == sorted(scores, reverse=True)


def test_a_frame_without_a_plate_is_a_200_with_no_plates_and_a_reason(client: TestClient, held_out) -> None:
    photo = held_out[0]
    image = photo.image()
    x0, _, x1, _ = photo.box
    strip = (
        image.crop((0, 0, round(x0), image.height))
        if x0 > image.width - x1
        else image.crop((round(x1), 0, image.width, image.height))
    )
    for picture in (strip, Image.new("RGB", (640, 480), (90, 110, 120))):
        response = client.post("/read-plate", **upload(jpeg(picture)))
        assert response.status_code == 200
        body = response.json()
        assert body["plates"] == [] and body["reason"] and body["count"] == 0
        assert body["confident"] is False and body["text"] == ""


def test_a_tight_crop_is_one_plate_filling_the_image(client: TestClient) -> None:
    plate = next(iter(generate_plates(TEST_CROPS, count=1, seed=5)))
    buffer = io.BytesIO()
    plate.image.save(buffer, "PNG")
    body = client.post("/read-plate", files={"file": ("p.png", buffer.getvalue(), "image/png")}).json()
    assert len(body["plates"]) == 1
    assert body["plates"][0]["box"] == {
        "x": 0,
        "y": 0,
        "width": plate.image.width,
        "height": plate.image.height,
    }
    assert body["text"] == plate.text
    # It is read with a grey margin around it; no character's box reaches into that margin.
    for char in (c for row in body["plates"][0]["rows"] for c in row["characters"]):
        b = char["box"]
        assert b["x"] >= 0 and b["y"] >= 0
        assert b["x"] + b["width"] <= plate.image.width and b["y"] + b["height"] <= plate.image.height


def _reading_with(*boxes: Box) -> SimpleNamespace:
    """What :func:`_zoom` reads of a plate reading: its characters' boxes in a 400 × 300 image."""
    return SimpleNamespace(
        characters=[SimpleNamespace(box=box) for box in boxes],
        segmentation=SimpleNamespace(width=400, height=300),
    )


def test_a_zoom_reaches_above_and_below_the_characters_found_and_stays_in_the_box() -> None:
    region = (0.0, 0.0, 400.0, 300.0)
    serial_row = _reading_with(Box(50, 200, 60, 40), Box(120, 200, 60, 40), Box(190, 200, 60, 40))
    left, top, right, bottom = _zoom(serial_row, lambda box: box, region)
    # Room for a row the first read missed: a top row is smaller than the serial row under it.
    assert top == pytest.approx(200 - ZOOM_UP_DOWN * 40) and 200 - top >= 30
    assert bottom == pytest.approx(min(300, 240 + ZOOM_UP_DOWN * 40))
    assert left < 50 and right > 250  # a little room either side
    assert (left, top) >= region[:2] and (right, bottom) <= region[2:]
    filling = _reading_with(Box(5, 5, 190, 140), Box(205, 150, 190, 140))
    assert _zoom(filling, lambda box: box, region) is None  # the same pixels: not read again
    assert _zoom(_reading_with(), lambda box: box, region) is None


def test_a_zoom_on_a_plate_read_sideways_widens_along_its_rows() -> None:
    """A photo stored sideways: the plate was read turned 270°, so its rows run down the photo."""
    serial_row = _reading_with(Box(50, 200, 60, 40), Box(120, 200, 60, 40), Box(190, 200, 60, 40))
    to_photo = _box_mapper(lambda p: _unturn(p, 270, 300, 400), (0, 0), 1.0)  # a 300 × 400 crop
    # Along the row (the photo's height): 10 % of its 200 px each side; across it (the photo's
    # width): the row's 40 px height above and below.
    assert _zoom(serial_row, to_photo, (0.0, 0.0, 300.0, 400.0)) == (160, 130, 280, 370)


def test_a_loosely_boxed_plate_is_read_with_its_small_top_row(client: TestClient, held_out) -> None:
    """The detector boxes this plate with the lamp above it; the top row (zone, lot, class) is
    small in that box. Read again around the characters found, both rows come back."""
    photo = next(p for p in held_out if p.path.name == "293e3b0e92d1529e.jpg")
    body = client.post("/read-plate", **upload(photo.path.read_bytes(), photo.path.name)).json()
    plate = body["plates"][0]
    assert iou(as_detection(plate["box"]), upright_box(photo)) < 0.5  # the box is loose
    labels = [c["label"] for row in plate["rows"] for c in row["characters"]]
    assert [len(row["characters"]) for row in plate["rows"]] == [4, 3]
    assert reads_exactly(parse_text(photo.text), labels), labels


def test_a_large_photo_is_read_within_the_pixel_limit_and_refused_above_it(held_out) -> None:
    photo = held_out[0]
    big = photo.image().resize((3000, 2250))
    data = jpeg(big)
    with make_client(max_photo_bytes=len(data) + 1, max_photo_pixels=3000 * 2250) as roomy:
        assert roomy.post("/read-plate", **upload(data)).status_code == 200
    with make_client(max_photo_bytes=len(data) + 1, max_photo_pixels=3000 * 2250 - 1) as strict:
        response = strict.post("/read-plate", **upload(data))
        assert response.status_code == 413 and response.json()["error"]["code"] == "too_many_pixels"
