"""Any image to the plates in it: find each plate, turn it upright, read it with the one plate reader.

The path, and why each step is there:

1. **Decode small where the file allows.** A JPEG is decoded at the smallest
   DCT scale that keeps :data:`DECODE_SIDE` px (Pillow's ``draft``), then
   turned upright by its EXIF tag. The detector needs a few hundred pixels;
   decoding a 12 MP photo whole costs more than everything after it.
2. **Find the plates** (:mod:`lpr.detection`): zero or more boxes, best first.
3. **Full resolution only where it is needed.** A plate read from the small
   decode must be at least :data:`MIN_PLATE_SIDE` px long; if it is not and
   the decode was reduced, the file is decoded again at full size and only the
   plate's box is cut from it.
4. **Upright** (:func:`read_upright`): the box, with a margin, is read both
   ways it may be up, in one pass of the plate reader: a box taller than wide
   turned a quarter each way (photos are often stored sideways), a wide one
   as it is and upside down. The reading scored best wins: the finder was
   trained to find no characters on a plate upside down. Tilt and perspective
   are the finder's to cope with (it learnt on warped plates); cutting the
   red field out and levelling it first lost characters at its edges and
   read fewer real plates.
5. **Read** with the plate reader (:mod:`lpr.readers`) and map the
   characters' boxes back to the upright image.
6. **Zoom** (:func:`_zoom`): a plate found in a photo is read once more,
   the way up already chosen, around the characters the first reading found
   (widened for a row it missed), and the surer reading kept. A loose box
   shrinks a plate until its small top row is lost.

A tight crop of a plate is found as one plate filling the image; its box is
then the whole image, and it is read with a grey margin around it
(:func:`read_tight`, :data:`TIGHT_MARGIN`): the finder learnt plates with
such a margin, and a plate cut at its edges is read worse without one.
A box covering much of the image (a close-up, a loose crop) is read both
whole and boxed, and the surer reading kept. ``rotation`` in the answer is the
quarter turn the photo needs for the plate to read left to right.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps

from lpr.char_finder import PAD_VALUE
from lpr.detection import Detection
from lpr.errors import unreadable
from lpr.plate_reader import Box, PlateReading
from lpr.preprocessing import load_image
from lpr.readers import PlateReader

#: The detection decode keeps at least this many pixels on its longer side.
DECODE_SIDE = 1024
#: A plate shorter than this (longer side, px) in the small decode is cut from the full-size pixels.
MIN_PLATE_SIDE = 320
#: Margin added around a found box before reading (share of its size, each side).
MARGIN = 0.08
#: A box covering at least this share of the image's width and height is the whole image (a tight crop).
TIGHT = 0.8
#: A tight crop is read with this grey margin each side (share of its size): the margin the finder
#: learnt plates with on average (``training.fitting.char_finder.NEAR_MARGIN`` / 2). Without it
#: a crop cut at the plate's edges is outside what the finder learnt, and reads fewer plates.
TIGHT_MARGIN = 0.125
#: A box covering at least this share of the image's area is read both whole and boxed (a close-up).
TIGHT_AREA = 0.4
#: At most this many plates are read in one image, best first.
MAX_PLATES = 5

#: A box in the pixels of the image read to the same box in the upright image's pixels.
BoxMapper = Callable[[Box], Box]


class PlateFinder(Protocol):
    """What finds the plates: :class:`lpr.detection.Detector`, or whatever runs one for its caller."""

    def detect(self, image: Image.Image) -> list[Detection]: ...


@dataclass(frozen=True, slots=True)
class PlateInPhoto:
    """One plate found and read, everything in the upright image's pixels."""

    box: Box  # the detector's box (the whole image for a tight crop)
    score: float  # the detector's confidence that a plate is there
    rotation: int  # degrees counter-clockwise the photo needs for the plate to read left to right
    reading: PlateReading  # its characters' boxes mapped to the upright image


@dataclass(frozen=True, slots=True)
class PhotoReading:
    """Every plate found in one image (at most :data:`MAX_PLATES`), the detector's best first."""

    width: int  # of the upright image (after its EXIF rotation)
    height: int
    plates: tuple[PlateInPhoto, ...]

    @property
    def reason(self) -> str | None:
        return None if self.plates else "no plate found in the image"


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """The image's size once its EXIF orientation is applied (read from the header only)."""
    orientation = image.getexif().get(0x0112, 1)
    return (image.height, image.width) if orientation in (5, 6, 7, 8) else image.size


def _unturn(points: np.ndarray, rotation: int, width: int, height: int) -> np.ndarray:
    """Points of an image turned ``rotation``° counter-clockwise, back in the unturned image."""
    x, y = points[:, 0], points[:, 1]
    if rotation == 90:
        return np.column_stack([width - y, x])
    if rotation == 180:
        return np.column_stack([width - x, height - y])
    if rotation == 270:
        return np.column_stack([y, height - x])
    return points


def _box_mapper(
    to_crop: Callable[[np.ndarray], np.ndarray],
    origin: tuple[int, int],
    factor: float,
    region: tuple[float, float, float, float] | None = None,
) -> BoxMapper:
    """A box in the image that was read → its bounding box in the upright full-size image, cut at
    the ``region`` read (full-size pixels: a grey margin read around it is not the image)."""

    def to_image(box: Box) -> Box:
        x0, y0 = box.x, box.y
        x1, y1 = x0 + box.width, y0 + box.height
        points = to_crop(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64))
        points = (points + np.array(origin)) / factor
        ix0, iy0 = (math.floor(v) for v in points.min(axis=0))
        ix1, iy1 = (math.ceil(v) for v in points.max(axis=0))
        ix0, iy0 = max(ix0, 0), max(iy0, 0)
        if region is not None:
            ix0, iy0 = max(ix0, math.floor(region[0])), max(iy0, math.floor(region[1]))
            ix1, iy1 = min(ix1, math.ceil(region[2])), min(iy1, math.ceil(region[3]))
        return Box(ix0, iy0, max(ix1 - ix0, 1), max(iy1 - iy0, 1))

    return to_image


def _quality(reading: PlateReading) -> float:
    """How surely a reading is the plate the right way up: how much the reader saw characters at all
    (:attr:`~lpr.plate_reader.PlateReading.evidence`; the finder finds none upside down) times how
    surely it named them (the best reading's per-character geometric mean)."""
    if not reading.readings:
        return 0.0
    best = reading.readings[0]
    return reading.evidence * best.score ** (1 / max(len(best.labels), 1))


def read_upright(image: Image.Image, turns: tuple[int, ...], reader: PlateReader) -> tuple[int, PlateReading]:
    """The image read at each of ``turns`` (degrees counter-clockwise), all in one pass of the
    reader; the turn whose reading scores best."""
    with unreadable():
        turned = [image.rotate(turn, expand=True) if turn else image for turn in turns]
    readings = reader.read(turned)
    best = max(range(len(turns)), key=lambda k: _quality(readings[k]))
    return turns[best], readings[best]


def read_tight(image: Image.Image, reader: PlateReader) -> tuple[int, PlateReading]:
    """A plate filling ``image``, read as the service reads a tight crop: with
    :data:`TIGHT_MARGIN` of grey around it, both ways up its shape allows. The turn chosen, and
    the reading with its boxes in ``image``'s pixels."""
    region = (0.0, 0.0, float(image.width), float(image.height))
    turn, reading, mapper = _read_region(region, image, 1.0, lambda: image, reader, margin=TIGHT_MARGIN)
    with unreadable():
        return turn, reading.moved(mapper)


def read_photo(data: bytes, detector: PlateFinder, reader: PlateReader) -> PhotoReading:
    """Every plate in an image file's bytes, best first (at most :data:`MAX_PLATES`).

    ``data`` is a file the caller has accepted (the service checks its byte and
    pixel limits first); it is opened here, as the reduced decode needs, and
    again at full size only if a plate needs it. Every step on the pixels runs
    under :func:`~lpr.errors.unreadable`: an image that cannot be processed
    raises :class:`~lpr.preprocessing.ImageError`, while a failure of
    ``detector`` or ``reader``'s models passes through as it is.
    """
    with unreadable():
        header = Image.open(io.BytesIO(data))
        width, height = _upright_size(header)
        if header.format == "JPEG" and max(header.size) > DECODE_SIDE:
            header.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
        small = load_image(header)
    scale = small.width / width  # small-decode pixels per upright full-size pixel
    found = detector.detect(small)[:MAX_PLATES]
    decoded: list[Image.Image] = [small] if scale == 1.0 else []

    def full_size() -> Image.Image:
        if not decoded:  # decoded once, and only if a plate is too small in the reduced decode
            with unreadable():
                decoded.append(load_image(Image.open(io.BytesIO(data))))
        return decoded[0]

    plates = tuple(_read_one(d, small, scale, width, height, full_size, reader) for d in found)
    return PhotoReading(width, height, plates)


def _read_region(
    region: tuple[float, float, float, float],
    small: Image.Image,
    scale: float,
    full_size: Callable[[], Image.Image],
    reader: PlateReader,
    turns: tuple[int, ...] | None = None,
    margin: float = 0.0,
) -> tuple[int, PlateReading, BoxMapper]:
    """Read one region (full-size pixels): the turn it needed, its reading, its box mapper.

    ``turns``: the quarter turns to try; by default the two ways up its shape allows.
    ``margin``: grey added each side (share of the region's size) before reading."""
    left, top, right, bottom = region
    source, factor = small, scale
    if max(right - left, bottom - top) * scale < MIN_PLATE_SIDE and scale < 1.0:
        source, factor = full_size(), 1.0
    x0, y0 = math.floor(left * factor), math.floor(top * factor)
    with unreadable():
        crop = source.crop((x0, y0, math.ceil(right * factor), math.ceil(bottom * factor)))
        mx, my = round(margin * crop.width), round(margin * crop.height)
        if mx or my:
            crop = ImageOps.expand(crop, (mx, my, mx, my), fill=(PAD_VALUE,) * 3)
            x0, y0 = x0 - mx, y0 - my
    if turns is None:
        turns = (90, 270) if crop.height > crop.width * 1.05 else (0, 180)
    turn, reading = read_upright(crop, turns, reader)

    def to_crop(points: np.ndarray) -> np.ndarray:
        return _unturn(points, turn, crop.width, crop.height)

    return turn, reading, _box_mapper(to_crop, (x0, y0), factor, region)


#: A zoom (:func:`_zoom`) widens the characters found by this share of their extent left and
#: right, and this share of their height above and below (room for a row the first read missed);
#: it is read only when it is at most :data:`ZOOM_AREA` of the box (else it is the same pixels).
ZOOM_SIDE = 0.1
ZOOM_UP_DOWN = 1.0
ZOOM_AREA = 0.9


def _zoom(
    reading: PlateReading, mapper: BoxMapper, region: tuple[float, float, float, float]
) -> tuple[float, float, float, float] | None:
    """The region (full-size pixels, within ``region``) a plate's first reading says its characters
    are in, widened for a row it missed; None when that is most of ``region`` already.

    A loose box (the lamp above the plate, the mudguard) shrinks the plate in the finder's
    letterbox until its small top row is lost; read again around the characters found, the
    plate fills the letterbox."""
    chars = reading.characters
    if not chars:
        return None
    # Widened in the pixels read (rows run left to right there, whatever the photo's turn).
    x0, y0 = min(c.box.x for c in chars), min(c.box.y for c in chars)
    x1 = max(c.box.x + c.box.width for c in chars)
    y1 = max(c.box.y + c.box.height for c in chars)
    w, h = x1 - x0, y1 - y0
    side = ZOOM_SIDE * w
    seen = reading.segmentation
    zx0, zy0 = max(0, math.floor(x0 - side)), max(0, math.floor(y0 - ZOOM_UP_DOWN * h))
    zx1 = min(seen.width, math.ceil(x1 + side))
    zy1 = min(seen.height, math.ceil(y1 + ZOOM_UP_DOWN * h))
    box = mapper(Box(zx0, zy0, max(1, zx1 - zx0), max(1, zy1 - zy0)))
    left, top, right, bottom = region
    zoom = (
        max(left, box.x),
        max(top, box.y),
        min(right, box.x + box.width),
        min(bottom, box.y + box.height),
    )
    area = (zoom[2] - zoom[0]) * (zoom[3] - zoom[1])
    if zoom[2] <= zoom[0] or zoom[3] <= zoom[1] or area > ZOOM_AREA * (right - left) * (bottom - top):
        return None
    return zoom


def _read_one(
    detection: Detection,
    small: Image.Image,
    scale: float,
    width: int,
    height: int,
    full_size: Callable[[], Image.Image],
    reader: PlateReader,
) -> PlateInPhoto:
    """Read one plate found; a box that fills much of the image may be a tight crop read whole."""
    x0, y0 = detection.x / scale, detection.y / scale
    w, h = detection.width / scale, detection.height / scale
    bx0, by0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    box = Box(bx0, by0, min(width, math.ceil(x0 + w)) - bx0, min(height, math.ceil(y0 + h)) - by0)
    whole = (0.0, 0.0, float(width), float(height))
    # The box with a margin: the detector's box can cut a character's edge.
    around = (
        max(0.0, x0 - MARGIN * w),
        max(0.0, y0 - MARGIN * h),
        min(float(width), x0 + w * (1 + MARGIN)),
        min(float(height), y0 + h * (1 + MARGIN)),
    )
    all_of_it = Box(0, 0, width, height)
    tight = w >= TIGHT * width and h >= TIGHT * height
    if tight:
        candidates = [(whole, all_of_it)]
    elif box.width * box.height >= TIGHT_AREA * width * height:
        # A close-up or a crop with a loose margin: read whole and boxed, keep the surer reading.
        candidates = [(whole, all_of_it), (around, box)]
    else:
        candidates = [(around, box)]
    margin = TIGHT_MARGIN if tight else 0.0
    best: tuple[Box, int, PlateReading, BoxMapper] | None = None
    for region, shown in candidates:
        rotation, reading, mapper = _read_region(region, small, scale, full_size, reader, margin=margin)
        if best is None or _quality(reading) > _quality(best[2]):
            best = (shown, rotation, reading, mapper)
    assert best is not None
    zoom = None if tight else _zoom(best[2], best[3], around)
    if zoom is not None:  # read again where the characters are, the way up already chosen
        rotation, reading, mapper = _read_region(zoom, small, scale, full_size, reader, (best[1],))
        if _quality(reading) > _quality(best[2]):
            best = (box, rotation, reading, mapper)
    shown, rotation, reading, mapper = best
    with unreadable():  # the geometry comes from the image's pixels
        upright = reading.moved(mapper)
    return PlateInPhoto(shown, detection.score, rotation, upright)
