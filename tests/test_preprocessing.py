"""The one preprocessing path: colour uploads and binarised crops meet in one domain."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from lpr.preprocessing import (
    ImageError,
    InputSpec,
    decode,
    ink_box,
    preprocess,
    preprocess_bytes,
    preprocess_into,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = sorted((SHARED / "samples").glob("*.png"))
SPEC = InputSpec(size=32, channels=1, margin=2)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Similarity of two model inputs: correlation of their pixels (1.0 = identical).

    Pixel correlation rather than glyph overlap, because a stroke one pixel to
    the side at 32x32 is the same glyph to the model but no overlap at all.
    """
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _dataset_style(colour: Image.Image) -> bytes:
    """Binarise a colour crop the way the dataset was made: gray, threshold, 50x50, JPEG."""
    gray = np.asarray(colour.convert("L"), dtype=np.float32)
    binary = ((gray > gray.mean() + 0.5 * gray.std()) * 255).astype(np.uint8)
    return _encode(Image.fromarray(binary).resize((50, 50), Image.Resampling.NEAREST), "JPEG", quality=90)


def _painted_on_red(dataset_crop: Path) -> bytes:
    """Turn a binarised dataset crop into a colour photo: white paint on a red plate."""
    glyph = np.asarray(Image.open(dataset_crop).convert("L").resize((97, 122)), dtype=np.float32) / 255
    paint, plate = np.array([236, 226, 232]), np.array([168, 38, 52])
    rgb = plate + glyph[:, :, None] * (paint - plate)
    rgb += np.random.default_rng(0).normal(0, 12, rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))
    return _encode(image, "JPEG", quality=85)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_colour_sample_and_its_binarised_copy_give_the_same_input(sample: Path) -> None:
    colour = Image.open(sample)
    a = preprocess(colour, SPEC)
    b = preprocess_bytes(_dataset_style(colour), SPEC)
    assert a.shape == b.shape == SPEC.shape
    assert similarity(a, b) > 0.8


@pytest.mark.parametrize("cls", ["0", "4", "ba", "pa"])
def test_dataset_crop_painted_on_red_gives_the_same_input(cls: str) -> None:
    crop = sorted((SHARED / "data" / "lpr" / "test" / cls).glob("*.jpg"))[0]
    a = preprocess_bytes(crop.read_bytes(), SPEC)
    b = preprocess_bytes(_painted_on_red(crop), SPEC)
    assert similarity(a, b) > 0.8


def test_glyph_is_white_whatever_the_polarity() -> None:
    sample = Image.open(SAMPLES[0]).convert("RGB")
    inverted = Image.fromarray(255 - np.asarray(sample))
    assert similarity(preprocess(sample, SPEC), preprocess(inverted, SPEC)) > 0.9


def test_a_thin_frame_round_the_crop_does_not_flip_the_polarity() -> None:
    """A crop cut tightly from a plate keeps a line of its frame all round; the glyph stays white."""
    glyph = np.zeros((50, 50), dtype=np.uint8)
    glyph[10:40, 20:30] = 255  # a white bar, the glyph
    framed = glyph.copy()
    framed[0, :] = framed[-1, :] = framed[:, 0] = framed[:, -1] = 255
    plain = preprocess(Image.fromarray(glyph), SPEC)
    seen = preprocess(Image.fromarray(framed), SPEC)[:, :, 0]
    assert seen[16, 16] == 1.0 and seen.mean() < 0.5, "the glyph must stay white, the plate black"
    # Black on white is still recognised as such and turned round.
    assert similarity(plain, preprocess(Image.fromarray(255 - glyph), SPEC)) > 0.9


def test_a_batch_is_prepared_bit_for_bit_as_its_crops_one_by_one() -> None:
    """The service prepares a batch's crops together (one NumPy call for many); the inputs must not move.

    Mixed sizes, modes and polarities in one batch, blanks among them, and a
    buffer that held other values before.
    """
    crops = [Image.open(p) for p in sorted((SHARED / "data" / "lpr" / "test").glob("*/*.jpg"))[::40]]
    colour = [Image.open(p).convert("RGB") for p in SAMPLES]
    rng = np.random.default_rng(0)
    odd = [
        Image.new("L", (37, 80), 0),  # blank
        Image.fromarray(255 - np.asarray(crops[0].convert("L"))),  # dark glyph on white
        Image.new("L", (1, 1), 255),
        Image.fromarray((rng.random((300, 120)) * 255).astype(np.uint8)),  # shrunk to the working side
        Image.fromarray((rng.random((9, 64, 3)) * 255).astype(np.uint8)),
    ]
    images = crops[:3] + odd[:2] + colour + crops[3:] + odd[2:]
    for spec in (SPEC, InputSpec(size=128, channels=3, margin=4)):
        out = np.full((len(images) + 2, *spec.shape), -1.0, dtype=np.float32)
        preprocess_into(images, spec, out)
        for row, image in zip(out, images, strict=False):
            assert np.array_equal(row, preprocess(image, spec))
        assert (out[len(images) :] == -1.0).all(), "rows past the batch are left alone"


def test_the_tight_crop_ignores_the_outer_percent_of_ink() -> None:
    mask = np.zeros((100, 60), dtype=bool)
    mask[20:80, 10:50] = True  # 2,400 ink pixels
    assert ink_box(mask) == (10, 20, 50, 80)
    mask[0, 0:20] = True  # a speck row of 20 pixels, under 1 % of the ink: ignored
    assert ink_box(mask) == (10, 20, 50, 80)
    mask[:, 59] = True  # a full-height line of 100 pixels, 4 % of the ink: kept
    assert ink_box(mask)[2] == 60
    assert ink_box(np.zeros((5, 5), dtype=bool)) is None


def test_frame_strips_in_augmentation_hug_an_edge() -> None:
    from training.synthesis.augment import ink_variant

    mask = np.zeros((64, 64), dtype=bool)
    mask[16:48, 24:40] = True
    rng = np.random.default_rng(0)
    framed = [ink_variant(mask, rng, frame_bars=1.0) for _ in range(20)]
    for variant in framed:
        outer = variant.copy()
        outer[6:-6, 6:-6] = False
        assert outer.sum() >= 0.6 * 64 - 1, "every variant keeps at least one strip along an edge"
    assert all(not ink_variant(mask, rng)[:3].any() for _ in range(5)), "off by default"


def test_rings_in_augmentation_frame_the_whole_glyph() -> None:
    from training.synthesis.augment import ink_variant

    glyph = np.zeros((64, 48), dtype=bool)
    glyph[16:48, 18:30] = True
    rng = np.random.default_rng(2)
    for _ in range(20):
        variant = ink_variant(glyph, rng, rings=1.0)
        assert variant.shape[0] > glyph.shape[0] and variant.shape[1] > glyph.shape[1], "room for the ring"
        sides = [variant[0].any(), variant[-1].any(), variant[:, 0].any(), variant[:, -1].any()]
        assert sum(sides) >= 3, "the frame runs along three or four sides"
        h, w = variant.shape
        assert variant[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].any(), "the glyph is still inside"


def test_neighbour_slivers_in_augmentation_sit_beside_the_glyph() -> None:
    """A variant with a neighbour keeps the glyph whole and adds a sliver of the other one past a gap."""
    from training.synthesis.augment import ink_variant

    glyph = np.zeros((40, 30), dtype=bool)
    glyph[5:35, 10:20] = True
    other = np.ones((40, 30), dtype=bool)
    rng = np.random.default_rng(1)
    for _ in range(40):
        variant = ink_variant(glyph, rng, neighbours=1.0, pool=[other])
        wider, taller = variant.shape[1] - glyph.shape[1], variant.shape[0] - glyph.shape[0]
        assert (wider > 0) != (taller > 0), "the sliver joins one side"
        assert variant.sum() > 0.8 * glyph.sum()
    plain = ink_variant(glyph, np.random.default_rng(1))
    assert plain.shape == glyph.shape, "off by default"
    # Off, the random stream is what it always was: recipes without slivers replay unchanged.
    assert np.array_equal(plain, ink_variant(glyph, np.random.default_rng(1), neighbours=0.0, pool=[other]))


def _mode_variants(rgb: Image.Image) -> dict[str, Image.Image]:
    gray = np.asarray(rgb.convert("L"), dtype=np.uint16)
    rgba = rgb.convert("RGBA")
    return {
        "RGBA": rgba,
        "P": rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64),
        "CMYK": rgb.convert("CMYK"),
        "I;16": Image.fromarray(gray * 257),
        "I": rgb.convert("L").convert("I"),
        "F": rgb.convert("L").convert("F"),
        "LA": rgb.convert("LA"),
        "1": rgb.convert("L").point(lambda v: 255 if v > 150 else 0).convert("1"),
        "YCbCr": rgb.convert("YCbCr"),
    }


@pytest.mark.parametrize("mode", ["RGBA", "P", "CMYK", "I;16", "I", "F", "LA", "1", "YCbCr"])
def test_odd_modes_work(mode: str) -> None:
    rgb = Image.open(SHARED / "samples" / "pa.png").convert("RGB")
    variant = _mode_variants(rgb)[mode]
    assert variant.mode == mode
    x = preprocess(variant, SPEC)
    assert x.shape == SPEC.shape and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert similarity(x, preprocess(rgb, SPEC)) > 0.75


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_files_decode(fmt: str) -> None:
    gray = np.asarray(Image.open(SHARED / "samples" / "8.png").convert("L"), dtype=np.uint16) * 257
    data = _encode(Image.fromarray(gray), fmt)
    reference = preprocess(Image.open(SHARED / "samples" / "8.png"), SPEC)
    assert similarity(preprocess_bytes(data, SPEC), reference) > 0.75


def test_exif_orientation_is_honoured() -> None:
    upright = Image.open(SHARED / "samples" / "ba.png").convert("RGB")
    stored_sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the counter-clockwise turn above
    data = _encode(stored_sideways, "JPEG", exif=exif, quality=95)
    assert decode(data).size == upright.size
    assert similarity(preprocess_bytes(data, SPEC), preprocess(upright, SPEC)) > 0.8


def test_blank_image_gives_an_empty_input() -> None:
    x = preprocess(Image.new("RGB", (40, 60), (180, 30, 40)), SPEC)
    assert x.shape == SPEC.shape and float(x.max()) == 0.0


def test_three_channel_spec_repeats_the_glyph() -> None:
    spec = InputSpec(size=128, channels=3, margin=4)
    x = preprocess(Image.open(SAMPLES[0]), spec)
    assert x.shape == (128, 128, 3)
    assert np.array_equal(x[:, :, 0], x[:, :, 2])


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"this is not an image", "not_an_image"),
        ((SHARED / "samples" / "1.png").read_bytes()[:600], "corrupt"),
    ],
    ids=["empty", "text", "truncated"],
)
def test_bad_bytes_raise_image_error(data: bytes, code: str) -> None:
    with pytest.raises(ImageError) as info:
        preprocess_bytes(data, SPEC)
    assert info.value.code == code


def test_pixel_limit_is_checked_before_decoding() -> None:
    bomb = _encode(Image.new("L", (6000, 6000)), "PNG", optimize=True)
    assert len(bomb) < 200_000
    with pytest.raises(ImageError) as info:
        decode(bomb, max_pixels=10_000_000)
    assert info.value.code == "too_many_pixels"
