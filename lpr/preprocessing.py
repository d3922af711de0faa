"""The one path from any character crop to the model's input.

Real uploads are colour photos (white paint on a red plate, any size, any
mode); the public dataset is binarised white-on-black at 50x50. Both go through
exactly these steps, in training, in evaluation and in the service, so the
model only ever sees one domain:

1. decode (EXIF orientation honoured, first frame only, odd modes flattened);
2. "whiteness" = the darkest channel of each pixel: white paint is bright in
   every channel while red paint is dark in green and blue, so this separates
   paint from plate far better than luminance, and is plain grayscale for
   grayscale input;
3. Otsu threshold, then polarity fixed so the glyph is white: the crop's border
   is mostly plate, so whichever value dominates the border (its outermost
   ring and a band a tenth of the side deep) and the crop is background;
4. tight crop around the glyph's ink (ignoring the outermost 1 % of ink mass on
   each side, so specks and screw heads do not stretch the box);
5. stretch to a square with a small black margin: the dataset's crops were
   stretched to 50x50, so stretching, not padding, matches it.

This module imports only NumPy and Pillow: the service ships it without
TensorFlow.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Longest side kept before thresholding; larger uploads are shrunk first, which
#: costs nothing in accuracy (the model sees at most 128 px) and bounds the work.
WORKING_SIDE = 256

#: Share of ink mass ignored on each side when cropping tightly.
INK_TRIM = 0.01

#: Width of the border band that decides polarity, as a share of the shorter side.
BORDER_BAND = 0.1


@dataclass(frozen=True)
class InputSpec:
    """Shape of a model's input; recorded in the model's metadata."""

    size: int = 32
    channels: int = 1
    margin: int = 2

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.channels)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        return cls(**{k: int(data[k]) for k in ("size", "channels", "margin")})


class ImageError(ValueError):
    """An upload that cannot be used as a character crop.

    ``code`` is a stable machine-readable reason; the message is for people.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def open_image(data: bytes, max_pixels: int = 25_000_000) -> Image.Image:
    """Read only the header of uploaded bytes; no pixel is decoded yet.

    The pixel count is checked here, so a decompression bomb costs nothing, and
    the service can decide from the size where the decoding should run.
    """
    if not data:
        raise ImageError("empty", "the upload is empty")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError("too_many_pixels", f"image declares too many pixels: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError("not_an_image", "the upload is not an image Pillow can read") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"image declares {width}x{height} = {width * height} pixels, over the limit of {max_pixels}",
        )
    if width < 1 or height < 1:
        raise ImageError("not_an_image", "the image has no pixels")
    return image


def load_image(image: Image.Image) -> Image.Image:
    """Decode an opened image's first frame, upright (EXIF), as ``L`` or ``RGB``."""
    try:
        image.seek(0)
        image.load()
        # In place: without EXIF rotation there is then nothing to copy.
        ImageOps.exif_transpose(image, in_place=True)
        return flatten(image)
    except Image.DecompressionBombError as exc:
        raise ImageError("too_many_pixels", f"image declares too many pixels: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError("corrupt", f"the image data is truncated or corrupt: {exc}") from exc


def decode(data: bytes, max_pixels: int = 25_000_000) -> Image.Image:
    """Decode uploaded bytes into an ``L`` or ``RGB`` image (header checked first)."""
    return load_image(open_image(data, max_pixels))


def flatten(image: Image.Image) -> Image.Image:
    """Bring any Pillow mode to ``L`` or ``RGB``.

    High-bit-depth modes are stretched to 8 bits by their own range (Otsu only
    cares about order); transparency is composited over black, the dataset's
    background.
    """
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float32)
        lo, hi = float(values.min()), float(values.max())
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
        return Image.fromarray(scaled.astype(np.uint8), "L")
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


_LEVELS = np.arange(256)


def otsu_thresholds(histograms: np.ndarray) -> np.ndarray:
    """Otsu's threshold of each row of 256-bin histograms: pixels ``> t`` are one class.

    Row-wise, so a batch of crops costs one set of NumPy calls instead of one
    set per crop (each call's overhead, not its arithmetic, is what a 50x50
    crop pays). Integer sums (exact), then the same float arithmetic per row as
    the one-crop form.
    """
    weight_lo = np.cumsum(histograms, axis=1)
    mass_lo = np.cumsum(histograms * _LEVELS, axis=1)
    total_weight, total_mass = weight_lo[:, -1:], mass_lo[:, -1:]
    weight_lo, mass_lo = weight_lo.astype(np.float64), mass_lo.astype(np.float64)
    weight_hi = total_weight - weight_lo
    mean_lo = mass_lo / np.maximum(weight_lo, 1)
    mean_hi = (total_mass - mass_lo) / np.maximum(weight_hi, 1)
    between = weight_lo * weight_hi * (mean_lo - mean_hi) ** 2
    return np.argmax(between, axis=1)


def otsu_threshold(values: np.ndarray) -> int:
    """Otsu's threshold of a uint8 array: pixels ``> t`` are one class."""
    return int(otsu_thresholds(np.bincount(values.ravel(), minlength=256)[None])[0])


def whiteness(image: Image.Image, max_side: int = WORKING_SIDE) -> np.ndarray:
    """Per-pixel darkest channel, as uint8, after shrinking to ``max_side``.

    One character needs no more than ``WORKING_SIDE``; a whole plate (eight
    characters in a row) passes a larger ``max_side`` so each glyph keeps the
    resolution a single crop would have.
    """
    image = flatten(image)
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        return pixels
    # Two element-wise minimums: ~20x faster than ``pixels.min(axis=2)`` on a
    # strided last axis, and this runs on every upload.
    return np.minimum(np.minimum(pixels[..., 0], pixels[..., 1]), pixels[..., 2])


def glyph_masks(grays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Boolean masks of the glyphs' ink (``True`` = ink, white on black), one per whiteness array."""
    if not grays:
        return []
    thresholds = otsu_thresholds(np.stack([np.bincount(g.ravel(), minlength=256) for g in grays]))
    masks = []
    for gray, threshold in zip(grays, thresholds.tolist(), strict=True):
        mask = gray > threshold
        if _background_is_ink(mask):
            mask = ~mask
        masks.append(mask)
    return masks


def binarise(image: Image.Image, max_side: int = WORKING_SIDE) -> np.ndarray:
    """Boolean mask of the glyph's ink (``True`` = ink), white-on-black polarity."""
    return glyph_masks([whiteness(image, max_side)])[0]


def _background_is_ink(mask: np.ndarray) -> bool:
    """Whether Otsu's bright class is the plate rather than the glyph.

    The outermost ring, the outer band (``BORDER_BAND`` of the shorter side)
    and the crop as a whole must all be mostly bright. A crop cut tightly from
    a plate often keeps a line of the plate's painted frame all round, which
    fills the ring; the ring alone turned 17 of the 1,599 training crops
    (all white on black) into negatives, ring and band 2, all three none. A
    dark glyph on a light ground passes all three.
    """
    total = int(np.count_nonzero(mask))
    # The whole crop first: it is the cheapest test, and a white-on-black crop fails it.
    if total <= 0.5 * mask.size:
        return False
    h, w = mask.shape
    ring = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    if ring.mean() <= 0.5:
        return False
    b = max(1, round(BORDER_BAND * min(h, w)))
    inner = mask[b : h - b, b : w - b]
    outer = h * w - inner.size
    return outer > 0 and (total - int(inner.sum())) > 0.5 * outer


Box = tuple[int, int, int, int]


def ink_boxes(masks: Sequence[np.ndarray], trim: float = INK_TRIM) -> list[Box | None]:
    """``(left, top, right, bottom)`` (exclusive) around each mask's ink, or ``None`` if blank.

    The outermost ``trim`` of the ink mass on each side is left out, so specks
    and screw heads do not stretch the box. All masks' column and row profiles
    are padded into one array (the padding only repeats each total, which no
    bound reaches before its own profile ends), so the bounds are found with
    one set of NumPy calls for the lot.
    """
    if not masks:
        return []
    profiles = [m.sum(axis=0) for m in masks] + [m.sum(axis=1) for m in masks]
    padded = np.zeros((len(profiles), max(len(p) for p in profiles)), dtype=np.int64)
    for row, profile in zip(padded, profiles, strict=True):
        row[: len(profile)] = profile
    cum = np.cumsum(padded, axis=1)
    total = cum[:, -1:]
    # searchsorted on each row: "right" = first index above, "left" = first index at or above.
    lo = np.argmax(cum > trim * total, axis=1)
    hi = np.maximum(np.argmax(cum >= (1.0 - trim) * total, axis=1) + 1, lo + 1)
    n = len(masks)
    bounds = zip(lo[:n].tolist(), lo[n:].tolist(), hi[:n].tolist(), hi[n:].tolist(), strict=True)
    return [box if ink else None for box, ink in zip(bounds, total[:n, 0].tolist(), strict=True)]


def ink_box(mask: np.ndarray, trim: float = INK_TRIM) -> Box | None:
    """``(left, top, right, bottom)`` (exclusive) around the ink, or ``None`` if blank."""
    return ink_boxes([mask], trim)[0]


def normalise_into(masks: Sequence[np.ndarray], spec: InputSpec, out: np.ndarray) -> np.ndarray:
    """Crop each glyph mask tightly and stretch it to ``spec``, into ``out`` (``(N, H, W, C)`` float32).

    The resizing is Pillow's, one call per glyph; everything else is one NumPy
    call for the whole batch: the conversion to [0, 1] of all glyphs at once,
    then the black margin.
    """
    inner, margin = spec.size - 2 * spec.margin, spec.margin
    out[: len(masks)] = 0.0
    stretched, rows = [], []
    for row, (mask, box) in enumerate(zip(masks, ink_boxes(masks), strict=True)):
        if box is None:
            continue
        left, top, right, bottom = box
        glyph = Image.fromarray(mask[top:bottom, left:right].view(np.uint8) * np.uint8(255), "L")
        stretched.append(glyph.resize((inner, inner), Image.Resampling.BILINEAR).tobytes())
        rows.append(row)
    if rows:
        glyphs = np.frombuffer(b"".join(stretched), dtype=np.uint8).reshape(len(rows), inner, inner)
        region = out[: len(masks), margin : margin + inner, margin : margin + inner, 0]
        # float32 division: the same values as ``asarray / 255.0`` per glyph.
        values = np.divide(glyphs, np.float32(255.0), dtype=np.float32)
        if len(rows) == len(masks):
            region[...] = values
        else:
            region[rows] = values
    if spec.channels > 1:
        out[: len(masks), :, :, 1:] = out[: len(masks), :, :, :1]
    return out


def normalise(mask: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Crop a glyph mask tightly and stretch it to ``spec``: float32 in [0, 1], HWC."""
    return normalise_into([mask], spec, np.empty((1, *spec.shape), dtype=np.float32))[0]


def inputs_into(grays: Sequence[np.ndarray], spec: InputSpec, out: np.ndarray) -> np.ndarray:
    """Whiteness arrays (:func:`whiteness`) to model inputs, in the first ``len(grays)`` rows of ``out``.

    The service decodes each upload on its own (a bad one fails alone) and
    then turns a whole chunk of them into inputs here at once.
    """
    return normalise_into(glyph_masks(grays), spec, out)


def preprocess_into(images: Sequence[Image.Image], spec: InputSpec, out: np.ndarray) -> np.ndarray:
    """Decoded crops to model inputs, written into the first ``len(images)`` rows of ``out``."""
    return inputs_into([whiteness(image) for image in images], spec, out)


def preprocess(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """Any decoded crop to one model input of shape ``spec.shape``."""
    return preprocess_into([image], spec, np.empty((1, *spec.shape), dtype=np.float32))[0]


def preprocess_bytes(data: bytes, spec: InputSpec, max_pixels: int = 25_000_000) -> np.ndarray:
    """Uploaded bytes to one model input; raises :class:`ImageError` on bad input."""
    return preprocess(decode(data, max_pixels=max_pixels), spec)


def load_file(path: str, spec: InputSpec) -> np.ndarray:
    """A crop on disk to one model input (used for datasets and evaluation)."""
    with open(path, "rb") as handle:
        return preprocess_bytes(handle.read(), spec, max_pixels=Image.MAX_IMAGE_PIXELS or 10**9)
