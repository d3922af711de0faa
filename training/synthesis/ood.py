"""Seeded out-of-class crops: what a user may upload that is none of the twelve symbols.

Four kinds, each a real way the service gets fed something it was not trained on:

* ``devanagari``: other Devanagari letters and vowels (च, क, र, अ ...), rendered
  from Debian's Devanagari fonts. The twelve classes' own glyphs (the digits
  ०-९, प and बा) are excluded, so every crop here is truly out of class;
* ``latin``: A-Z and a-z from DejaVu (a Latin plate, a mis-cropped sticker);
* ``blank``: plate with no paint (black, or red-plate colour with noise);
* ``smudge``: blobs and scribbles of paint that form no character.

Glyphs are styled like the dataset's crops: white on black, thick strokes
(Pillow's stroke), small rotation and shear, the glyph stretched to fill a
50x50 square with uneven margins, speckle noise, stored as JPEG. A quarter are
instead painted white on a noisy red plate at upload size, like
``shared/samples``. Every crop is returned as encoded bytes, so it goes through
exactly the upload path (``lpr.preprocessing.preprocess_bytes``).

:func:`hand_painted` gives a glyph the look of a real plate's brushed letter;
the evaluation's plates with foreign letters (``training.synthesis.plates``) use it.

Fonts are found by path, not through fontconfig, so the set is the same on
every machine that has the packages; a missing one raises
:class:`FontsMissing` naming the Debian package to install.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from lpr.labels import DEVANAGARI
from lpr.preprocessing import InputSpec, preprocess_bytes
from training.synthesis.augment import edge_band

#: Font files used, with the Debian package that ships each. Explicit files (not
#: a glob over a folder) so that extra packages installed on one machine do not
#: change the evaluation set.
FONTS: dict[str, tuple[tuple[str, str], ...]] = {
    "devanagari": (
        ("/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf", "fonts-lohit-deva"),
        ("/usr/share/fonts/truetype/lohit-nepali/Lohit-Nepali.ttf", "fonts-lohit-deva-nepali"),
        ("/usr/share/fonts/truetype/Gargi/Gargi.ttf", "fonts-gargi"),
    ),
    "latin": tuple(
        (f"/usr/share/fonts/truetype/dejavu/{name}.ttf", "fonts-dejavu-core")
        for name in (
            "DejaVuSans",
            "DejaVuSans-Bold",
            "DejaVuSerif",
            "DejaVuSerif-Bold",
            "DejaVuSansMono-Bold",
        )
    ),
}

#: Every Debian package :data:`FONTS` needs, for error messages and ``.ci/run``.
FONT_PACKAGES: tuple[str, ...] = tuple(sorted({pkg for fonts in FONTS.values() for _, pkg in fonts}))

#: Devanagari consonants, independent vowels and common conjuncts that are not one
#: of the twelve classes. Letters inside a class's glyph are left out too (ब is the
#: body of बा), since a crop of them is a fair reading of that class.
_CONSONANTS = "कखगघङचछजझञटठडढणतथदधनफबभमयरलवशषसह"
_VOWELS = "अआइईउऊऋएऐओऔ"
DEVANAGARI_OTHERS: tuple[str, ...] = (
    *(c for c in _CONSONANTS + _VOWELS if c not in "".join(DEVANAGARI.values())),
    "क्ष",
    "त्र",
    "ज्ञ",
    "श्र",
)
LATIN: tuple[str, ...] = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

KINDS: tuple[str, ...] = ("devanagari", "latin", "blank", "smudge")
#: The kinds drawn from a symbol list and a font list (blanks and smudges have neither).
GLYPH_KINDS: tuple[str, ...] = ("devanagari", "latin")
#: Default share of each kind in a generated set.
MIX: dict[str, float] = {"devanagari": 0.4, "latin": 0.4, "blank": 0.1, "smudge": 0.1}

#: Side of the dataset's crops.
SIDE = 50


@dataclass(frozen=True)
class Vocabulary:
    """Which symbols and font files the glyph kinds draw from."""

    symbols: dict[str, tuple[str, ...]]
    fonts: dict[str, tuple[str, ...]]


#: Everything: what :func:`generate` draws from unless told otherwise.
FULL = Vocabulary(
    symbols={"devanagari": DEVANAGARI_OTHERS, "latin": LATIN},
    fonts={kind: tuple(path for path, _ in FONTS[kind]) for kind in GLYPH_KINDS},
)

#: Font files no training crop is drawn in (:func:`holdout_split`): Gargi's design
#: differs most from the two Lohit fonts, and serif Latin from the sans faces.
HELD_OUT_FONTS: dict[str, tuple[str, ...]] = {
    "devanagari": ("/usr/share/fonts/truetype/Gargi/Gargi.ttf",),
    "latin": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    ),
}


#: Out-of-class symbols drawn like one of the twelve classes (Latin O is the digit ०):
#: never trained as "none of the classes", or the model would learn to doubt real zeros.
LOOKALIKES: frozenset[str] = frozenset("Oo")


def holdout_split() -> tuple[Vocabulary, Vocabulary]:
    """``(training, held_out)``: disjoint halves of the symbols, for outlier exposure.

    A model trained on out-of-class crops (outlier exposure) must be measured on
    symbols it never saw, or the flagged share measures memorisation. The split
    is fixed, not seeded: the symbols at even positions of :data:`DEVANAGARI_OTHERS`
    and :data:`LATIN` (in their listed order) train, less :data:`LOOKALIKES`; all
    others are held out, which puts the issue's example च (index 5) and O in the
    held-out half. Training crops are drawn only in the fonts outside
    :data:`HELD_OUT_FONTS`; the held-out half uses every font, so its crops in a
    held-out font are new in both symbol and typeface.
    """
    trained = {
        kind: tuple(s for s in FULL.symbols[kind][0::2] if s not in LOOKALIKES) for kind in GLYPH_KINDS
    }
    training = Vocabulary(
        symbols=trained,
        fonts={
            kind: tuple(f for f in FULL.fonts[kind] if f not in HELD_OUT_FONTS[kind]) for kind in GLYPH_KINDS
        },
    )
    held_out = Vocabulary(
        symbols={
            kind: tuple(s for s in FULL.symbols[kind] if s not in trained[kind]) for kind in GLYPH_KINDS
        },
        fonts=FULL.fonts,
    )
    return training, held_out


class FontsMissing(FileNotFoundError):
    """A font file the generator needs is not installed."""


def missing_fonts() -> list[str]:
    """Font files of :data:`FONTS` not on this machine (empty when all are there)."""
    return [path for fonts in FONTS.values() for path, _ in fonts if not Path(path).is_file()]


def require_fonts() -> None:
    """Raise :class:`FontsMissing` naming the Debian packages to install."""
    missing = missing_fonts()
    if missing:
        packages = sorted({pkg for fonts in FONTS.values() for path, pkg in fonts if path in missing})
        raise FontsMissing(
            f"font files missing: {', '.join(missing)}; install the Debian packages with "
            f"`apt-get install -y {' '.join(packages)}`"
        )


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # Raqm layout shapes conjuncts (क्ष) and vowel signs properly when Pillow has it;
    # the basic layout still draws single letters correctly.
    return ImageFont.truetype(path, size)


@dataclass(frozen=True)
class OODCrop:
    """One out-of-class crop: what it shows and the bytes a client would upload."""

    kind: str
    symbol: str
    style: str
    data: bytes
    #: Font file of a glyph crop; empty for blanks and smudges.
    font: str = ""


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _render_glyph(text: str, font_path: str, rng: np.random.Generator) -> np.ndarray:
    """A white glyph on black at high resolution, thickened, sheared and rotated: uint8."""
    size = 64
    centre = size  # the canvas is 2 * size wide; glyphs are drawn around its middle
    canvas = Image.new("L", (2 * size, 2 * size), 0)
    stroke = int(rng.integers(1, 5))
    ImageDraw.Draw(canvas).text(
        (centre, centre),
        text,
        fill=255,
        font=_font(font_path, size),
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=255,
    )
    # One affine resample for shear and rotation together (output -> input mapping about the centre).
    angle = np.deg2rad(rng.uniform(-6, 6))
    shear = rng.uniform(-0.15, 0.15)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    (a, b), (d, e) = rotation @ np.array([[1.0, shear], [0.0, 1.0]])
    coefficients = (a, b, centre - a * centre - b * centre, d, e, centre - d * centre - e * centre)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
    return np.asarray(canvas)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Seeded noise smoothed to features about ``sigma`` px across, scaled to [-1, 1]."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / max(float(np.abs(field).max()), 1e-6)


def hand_painted(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rendered glyph as a sign painter's brush leaves it: uint8 in, uint8 out, same shape.

    Plate letters are painted by hand, not typeset: a font's even stroke and
    straight lines are a look no real च has, and a model measured on typeset
    letters only looks better than it is on a painted one. Two changes, both
    seeded: the stroke's width drifts along its length (thicker where a slow
    field is high, thinner where it is low), and the whole letter is bent by
    a smooth elastic displacement of a few pixels (Simard et al., 2003).
    """
    image = Image.fromarray(glyph)
    reach = 2 * int(rng.integers(1, 3)) + 1  # 3 or 5 px: a stroke gains or loses up to 2 px each side
    thicker = np.asarray(image.filter(ImageFilter.MaxFilter(reach)))
    thinner = np.asarray(image.filter(ImageFilter.MinFilter(reach)))
    width = _smooth_field(glyph.shape, rng, sigma=glyph.shape[0] / 10)
    painted = np.where(width > 0.35, thicker, np.where(width < -0.35, thinner, glyph))
    amplitude = rng.uniform(2.0, 5.0)
    dy, dx = (amplitude * _smooth_field(glyph.shape, rng, sigma=glyph.shape[0] / 14) for _ in range(2))
    rows, cols = np.indices(glyph.shape, dtype=np.float64)
    bent = ndimage.map_coordinates(painted.astype(np.float32), [rows + dy, cols + dx], order=1, cval=0.0)
    return np.clip(bent, 0, 255).astype(np.uint8)


def _fit_square(glyph: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """Crop around the ink with uneven margins and stretch to ``side`` x ``side``, like the dataset."""
    rows = np.flatnonzero(glyph.max(axis=1) > 127)
    cols = np.flatnonzero(glyph.max(axis=0) > 127)
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    h, w = bottom - top, right - left
    margins = rng.uniform(0.0, 0.12, size=4)
    box = (
        max(0, int(left - margins[0] * w)),
        max(0, int(top - margins[1] * h)),
        min(glyph.shape[1], int(right + margins[2] * w)),
        min(glyph.shape[0], int(bottom + margins[3] * h)),
    )
    image = Image.fromarray(glyph).crop(box).resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(image)


def _speckle(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip a few pixels and sometimes add a white strip at an edge (plate border), as in the dataset."""
    mask = mask ^ (rng.random(mask.shape) < rng.uniform(0.0, 0.03))
    if rng.random() < 0.2:
        width = int(rng.integers(1, 4))
        mask[edge_band(int(rng.integers(4)), width)] = True
    return mask


def _as_binary_crop(gray: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dataset style: binarised white-on-black 50x50 JPEG."""
    mask = _speckle(gray > 127, rng)
    return _encode(Image.fromarray(mask.astype(np.uint8) * 255, "L"), "JPEG")


def _as_plate_crop(gray: np.ndarray, rng: np.random.Generator) -> bytes:
    """Upload style: white paint on a noisy red plate, upload-sized, PNG."""
    height, width = int(rng.integers(90, 130)), int(rng.integers(80, 125))
    paint = np.asarray(Image.fromarray(gray).resize((width, height), Image.Resampling.BILINEAR), np.float32)
    paint = paint[..., None] / 255.0
    plate = np.array([rng.uniform(125, 175), rng.uniform(25, 70), rng.uniform(30, 110)], np.float32)
    white = np.array([rng.uniform(195, 240), rng.uniform(175, 235), rng.uniform(185, 240)], np.float32)
    pixels = plate * (1 - paint) + white * paint + rng.normal(0, 8, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return _encode(image.filter(ImageFilter.GaussianBlur(0.6)), "PNG")


def _glyph_crop(kind: str, rng: np.random.Generator, vocabulary: Vocabulary = FULL) -> OODCrop:
    symbols, fonts = vocabulary.symbols[kind], vocabulary.fonts[kind]
    symbol = symbols[int(rng.integers(len(symbols)))]
    font_path = fonts[int(rng.integers(len(fonts)))]
    glyph = _render_glyph(symbol, font_path, rng)
    if rng.random() < 0.25:
        return OODCrop(kind, symbol, "plate", _as_plate_crop(_fit_square(glyph, rng, 100), rng), font_path)
    return OODCrop(kind, symbol, "binary", _as_binary_crop(_fit_square(glyph, rng, SIDE), rng), font_path)


def _blank_crop(rng: np.random.Generator) -> OODCrop:
    style = ("black", "specks", "plate")[int(rng.integers(3))]
    if style == "black":
        image = Image.new("L", (SIDE, SIDE), 0)
    elif style == "specks":
        image = Image.fromarray(
            ((rng.random((SIDE, SIDE)) < rng.uniform(0.002, 0.02)) * 255).astype(np.uint8)
        )
    else:
        size = (int(rng.integers(80, 125)), int(rng.integers(90, 130)), 3)
        plate = np.array([rng.uniform(125, 175), rng.uniform(25, 70), rng.uniform(30, 110)])
        image = Image.fromarray(np.clip(plate + rng.normal(0, 10, size), 0, 255).astype(np.uint8), "RGB")
    return OODCrop("blank", "", style, _encode(image, "PNG" if style == "plate" else "JPEG"))


def _smudge_crop(rng: np.random.Generator) -> OODCrop:
    """Random blobs (ellipses) or a scribble (a thick random walk), white on black."""
    big = 4 * SIDE
    image = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(image)
    style = ("blobs", "scribble")[int(rng.integers(2))]
    if style == "blobs":
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = rng.uniform(0.2, 0.8, 2) * big
            rx, ry = rng.uniform(0.08, 0.35, 2) * big
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(2, 10))))
    else:
        points = np.cumsum(rng.normal(0, 0.12 * big, (int(rng.integers(3, 8)), 2)), axis=0)
        points = points - points.mean(axis=0) + big / 2
        draw.line(
            [tuple(p) for p in points.tolist()], fill=255, width=int(rng.integers(12, 30)), joint="curve"
        )
    gray = np.asarray(image)
    if rng.random() < 0.25:
        return OODCrop("smudge", "", style, _as_plate_crop(_fit_square(gray, rng, 100), rng))
    return OODCrop("smudge", "", style, _as_binary_crop(_fit_square(gray, rng, SIDE), rng))


def generate(
    n: int, seed: int = 0, mix: dict[str, float] | None = None, vocabulary: Vocabulary = FULL
) -> Iterator[OODCrop]:
    """``n`` crops, the kinds in proportion ``mix`` (counts rounded), deterministic for ``seed``.

    ``vocabulary`` restricts the glyph kinds' symbols and fonts (see
    :func:`holdout_split`); the default draws from all of them.
    """
    require_fonts()
    mix = mix or MIX
    total = sum(mix.values())
    counts = {kind: round(n * share / total) for kind, share in mix.items()}
    rng = np.random.default_rng(seed)
    for kind, count in counts.items():
        for _ in range(count):
            if kind in ("devanagari", "latin"):
                yield _glyph_crop(kind, rng, vocabulary)
            elif kind == "blank":
                yield _blank_crop(rng)
            elif kind == "smudge":
                yield _smudge_crop(rng)
            else:
                raise ValueError(f"unknown out-of-class kind {kind!r}; expected one of {KINDS}")


def render(symbol: str, seed: int = 0, kind: str = "devanagari") -> bytes:
    """One dataset-style crop of ``symbol`` (e.g. ``"च"``) as JPEG bytes, e.g. to post to the API."""
    require_fonts()
    rng = np.random.default_rng(seed)
    font_path, _ = FONTS[kind][0]
    return _as_binary_crop(_fit_square(_render_glyph(symbol, font_path, rng), rng, SIDE), rng)


def load(crops: list[OODCrop], spec: InputSpec) -> np.ndarray:
    """The crops through the shared upload preprocessing, as one ``(N, H, W, C)`` batch."""
    if not crops:
        return np.zeros((0, *spec.shape), dtype=np.float32)
    return np.stack([preprocess_bytes(crop.data, spec) for crop in crops])
