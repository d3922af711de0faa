"""The plate grammar and how the reader decodes against it: honest ``?`` instead of a forced letter."""

from __future__ import annotations

import numpy as np
import pytest

from lpr.labels import DEVANAGARI, LABELS
from lpr.model import ModelMetadata
from lpr.plate_grammar import CLASS_LETTERS, READABLE, ZONES, layouts, parse
from lpr.plate_reader import UNREADABLE, decode
from lpr.preprocessing import InputSpec
from lpr.segmentation import Glyph, Segmentation

META = ModelMetadata(
    raw={},
    name="test",
    version="0",
    labels=LABELS,
    devanagari=tuple(DEVANAGARI[label] for label in LABELS),
    input_name="image",
    output_name="probabilities",
    spec=InputSpec(),
    temperature=1.0,
    threshold=0.5,
)


def test_the_grammar_knows_the_14_zones_and_the_class_letters() -> None:
    assert len(ZONES) == 14
    zones = "मे को स ज बा ना ग लु ध रा भे क से म"  # Sagarmatha as painted
    assert set(ZONES.values()) == set(zones.split())
    assert set(CLASS_LETTERS.values()) == set(["प", "च", "क", "ह", "त", "ज", "ख"])
    assert {"zone": {"ba"}, "class": {"pa"}} == READABLE, "the model reads बा and प only"


@pytest.mark.parametrize("zone", list(ZONES.values()))
@pytest.mark.parametrize("klass", list(CLASS_LETTERS.values()))
def test_every_zone_and_class_letter_parses(zone: str, klass: str) -> None:
    slots = parse(f"{zone} १८ {klass} ५७६९")
    assert slots is not None
    assert [slot for slot, _ in slots] == [
        "zone",
        "lot",
        "lot",
        "class",
        "serial",
        "serial",
        "serial",
        "serial",
    ]
    assert ZONES[slots[0][1]] == zone and CLASS_LETTERS[slots[3][1]] == klass


@pytest.mark.parametrize(
    "text", ["बा १२३४ प १", "प १ बा २", "बा प १२", "बा १ प", "बा १ प १२३४५", "१२ प ३४", "बा १२ अ ३४"]
)
def test_what_is_no_plate_does_not_parse(text: str) -> None:
    assert parse(text) is None


def test_layouts_place_the_class_letter_where_the_lengths_allow() -> None:
    assert layouts([3, 4]) == [("zone", "lot", "class", "serial", "serial", "serial", "serial")]
    one_row = layouts([7])  # बा १ प ४५६७ or बा १२ प ४५६ or बा १२३ प ४५
    assert [layout.index("class") for layout in one_row] == [2, 3, 4]
    assert layouts([2]) == [] and layouts([1, 1, 1]) == [] and layouts([6, 2]) == []


def plate(*rows: int) -> Segmentation:
    glyphs = [
        [Glyph((10 * i, 10 * r, 8, 8), np.ones((4, 4), bool)) for i in range(n)] for r, n in enumerate(rows)
    ]
    return Segmentation(100, 40, glyphs)


def row(label: str, p: float = 0.97) -> np.ndarray:
    """A probability row: ``p`` on ``label``, the rest spread evenly."""
    out = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1), np.float32)
    out[LABELS.index(label)] = p
    return out


def uniform() -> np.ndarray:
    return np.full(len(LABELS), 1 / len(LABELS), np.float32)


def test_a_car_plate_reads_its_digits_and_answers_the_class_letter_as_unknown() -> None:
    """बा १८ च ५७६९: the model has no च; the grammar must not turn its doubt into a confident प."""
    probabilities = np.stack(
        [row("ba"), row("1"), row("8"), uniform(), row("5"), row("7"), row("6"), row("9")]
    )
    reading = decode(plate(4, 4), probabilities, META)
    assert reading.labels == [["ba", "1", "8", UNREADABLE], ["5", "7", "6", "9"]]
    unknown = reading.rows[0].characters[3]
    assert unknown.unknown is True and unknown.reason == "unsupported_symbol" and unknown.slot == "class"
    assert unknown.devanagari == UNREADABLE and unknown.confidence < META.threshold
    assert len(unknown.candidates) == 3
    assert reading.matches_format is True and not reading.confident
    best = reading.readings[0]
    assert best.labels == ("ba", "1", "8", UNREADABLE, "5", "7", "6", "9")
    assert best.text == "बा१८? ५७६९" and best.matches_format is True


def test_a_doubtful_pa_is_never_raised_into_a_confident_one() -> None:
    """The class slot allows only प among the twelve: a weak प stays weak, and is answered ?."""
    weak_pa = row("4", 0.55)
    weak_pa[LABELS.index("pa")] = 0.3
    weak_pa /= weak_pa.sum()
    probabilities = np.stack([row("ba"), row("2"), weak_pa, row("3")])
    reading = decode(plate(4), probabilities, META)
    # The layout may put प at index 2 (lot 1, serial 1); whatever it picks, nothing reads a confident प.
    for character in reading.characters:
        if character.label == "pa":
            assert character.confidence >= META.threshold


def test_a_plate_of_known_symbols_reads_confidently() -> None:
    probabilities = np.stack([row("ba"), row("9"), row("pa"), row("4"), row("6"), row("5"), row("9")])
    reading = decode(plate(3, 4), probabilities, META)
    assert reading.labels == [["ba", "9", "pa"], ["4", "6", "5", "9"]]
    assert not any(c.unknown for c in reading.characters) and reading.matches_format
    assert reading.text == "बा९प ४६५९" and reading.count == 7 and reading.reason is None
    scores = [r.score for r in reading.readings]
    assert scores[0] == pytest.approx(0.97**7, rel=1e-3) and scores == sorted(scores, reverse=True)


def test_a_low_confidence_digit_is_unknown_with_its_reason() -> None:
    probabilities = np.stack([row("ba"), row("1", 0.4), row("pa"), row("4")])
    digit = decode(plate(4), probabilities, META).rows[0].characters[1]
    assert digit.label == UNREADABLE and digit.reason == "low_confidence" and digit.slot == "lot"
    assert digit.candidates[0].label == "1"


def test_characters_that_fit_no_plate_are_read_without_the_grammar() -> None:
    probabilities = np.stack([row("3"), row("pa")])
    reading = decode(plate(2), probabilities, META)
    assert reading.matches_format is False and [c.slot for c in reading.characters] == [None, None]
    assert reading.labels == [["3", "pa"]]
    assert reading.readings and not reading.readings[0].matches_format


def test_without_the_grammar_each_character_is_read_on_its_own() -> None:
    """What ``lpr-train plates`` reports as the segmenter and classifier alone: no slot, no readings."""
    probabilities = np.stack([row("ba"), row("1"), row("8"), uniform()])
    reading = decode(plate(4), probabilities, META, use_grammar=False)
    assert [c.slot for c in reading.characters] == [None] * 4 and reading.readings == ()
    assert reading.labels == [["ba", "1", "8", UNREADABLE]] and not reading.matches_format
    assert reading.characters[3].reason == "low_confidence" and not reading.confident


def test_a_letter_slot_asks_the_letter_threshold_while_digits_keep_the_crop_threshold() -> None:
    """को read as बा at 0.65: above the crop threshold, below the letter slots' bar: ``?``, not बा."""
    from dataclasses import replace

    strict = replace(META, letter_threshold=0.8)
    probabilities = np.stack([row("ba", 0.65), row("3", 0.65), row("4"), row("pa"), row("8"), row("2")])
    zone, lot = decode(plate(4, 2), probabilities, strict).characters[:2]
    assert (zone.slot, zone.label, zone.reason) == ("zone", UNREADABLE, "unsupported_symbol")
    assert zone.confidence == pytest.approx(0.65, abs=0.01)  # the model's own, never raised
    assert (lot.label, lot.unknown) == ("3", False)  # 0.65 clears the crop threshold of 0.5
    lenient = decode(plate(4, 2), probabilities, META)  # without a letter bar: the crop threshold
    assert lenient.labels[0][0] == "ba"


def test_a_glyph_that_cannot_be_one_symbol_is_doubtful_however_sure_the_model_is() -> None:
    """Touching glyphs come out as one mark: too wide, or twice its row's height (० joined to ३ below);
    a प with its head bar, boxed 1.7 × as wide as tall, is still one letter."""
    glyphs = [
        [
            *(Glyph((10 * i, 0, 8, 10), np.ones((4, 4), bool)) for i in range(3)),
            Glyph((30, 0, 17, 10), np.ones((4, 4), bool)),  # प, wide with its head bar
        ],
        [
            Glyph((0, 12, 8, 10), np.ones((4, 4), bool)),
            Glyph((10, 0, 8, 22), np.ones((4, 4), bool)),  # reaches up into the row above
            Glyph((20, 12, 22, 10), np.ones((4, 4), bool)),  # two digits wide
            Glyph((44, 12, 8, 10), np.ones((4, 4), bool)),
        ],
    ]
    probabilities = np.stack([row(label) for label in ("ba", "6", "0", "pa", "5", "3", "3", "9")])
    first, second = decode(Segmentation(60, 30, glyphs), probabilities, META).rows
    assert [c.reason for c in second.characters] == [None, "low_confidence", "low_confidence", None]
    assert second.labels == ["5", UNREADABLE, UNREADABLE, "9"]
    assert first.labels[3] == "pa" and first.characters[3].reason is None


def test_a_confident_plate_asks_every_character_to_clear_the_plate_bar() -> None:
    """A plate is stored as read only when none of its characters is merely probable: one digit at 0.9
    is answered (above the crop threshold) but makes the plate doubtful under a 0.95 plate bar."""
    from dataclasses import replace

    probabilities = np.stack([row(label) for label in ("ba", "1", "2", "pa")] + [row("3", 0.9), row("4")])
    segmentation = plate(4, 2)
    for meta, confident in ((META, True), (replace(META, plate_threshold=0.95), False)):
        reading = decode(segmentation, probabilities, meta)
        assert not any(c.unknown for c in reading.characters) and reading.all_known
        assert reading.confident is confident
    assert META.plate_bar == META.threshold, "metadata without a plate bar keeps the crop threshold"


def test_metadata_refuses_a_plate_bar_outside_zero_to_one() -> None:
    from lpr.model import ModelLoadError

    raw = {
        "labels": list(LABELS),
        "version": "0",
        "preprocessing": InputSpec().to_dict(),
        "calibration": {"temperature": 1.0, "threshold": 0.4, "plate_threshold": 0.98},
    }
    assert ModelMetadata.from_dict(raw).plate_bar == 0.98
    with pytest.raises(ModelLoadError, match="calibration"):
        ModelMetadata.from_dict({**raw, "calibration": {**raw["calibration"], "plate_threshold": 1.5}})
