"""The real plates' texts: ``plate-photos/transcriptions.json``, each read into the grammar's slots.

The photos' texts were read by eye (the data's README): Devanagari, rows
joined top row first, ``_`` where the character could not be read with
confidence. Each text is parsed by :func:`lpr.plate_grammar.parse`, the one
grammar, so that every symbol carries its slot (zone, lot, class, serial) and
its ASCII id; an unreadable ``_`` keeps the slot its place gives it and no id.

Split: a reader fitted on these plates must be measured on plates of bikes it
never saw, and the photo path on photos the detector never saw. The shipped
detector's record names its ``validation`` photos; they are the held-out
plates here. Its split grouped photos by look and by stem, not by the text it
did not have, so a fitted photo can show a held-out bike: such a photo is
``withheld``, in neither the reader's fit nor its validation.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lpr.labels import DEVANAGARI, DIGITS, LABELS
from lpr.plate_grammar import CLASS_LETTERS, ZONES, Slot, parse
from lpr.plate_reader import UNREADABLE
from training.common.outputs import read_json
from training.data.photos import Photo, open_photos

TRANSCRIPTIONS = "transcriptions.json"
#: What the transcriptions write where a character could not be read.
UNREAD = "_"
#: A plate's split: held out (the detector's validation), fitted, or a fitted photo of a held-out bike.
SPLITS = ("validation", "fit", "withheld")


@dataclass(frozen=True)
class Symbol:
    """One painted character: the slot the grammar gives it, its ASCII id (``None``: unreadable)."""

    slot: Slot
    label: str | None

    @property
    def expected(self) -> str | None:
        """What an honest reader answers here: the id if it is one of the model's twelve, else ``?``;
        ``None`` where the truth is unreadable (any answer scores nothing)."""
        if self.label is None:
            return None
        return self.label if self.label in LABELS else UNREADABLE

    def accepts(self, read: str) -> bool:
        """Whether ``read`` is a right answer here: the symbol itself, or for a letter outside the
        twelve ``?`` too (honest, if not a reading); anything where the truth is unreadable."""
        if self.label is None:
            return True
        return read == self.label or (self.label not in LABELS and read == UNREADABLE)

    @property
    def in_class(self) -> bool:
        """A symbol the reader can name: read, and one of the twelve."""
        return self.label is not None and self.label in LABELS


@dataclass(frozen=True)
class RealPlate:
    """One photo with its plate box, the plate's text as transcribed, its symbols and its split."""

    photo: Photo
    text: str
    symbols: tuple[Symbol, ...]
    split: str

    @property
    def name(self) -> str:
        return self.photo.path.name


def parse_text(text: str) -> tuple[Symbol, ...]:
    """A transcription as its symbols, in reading order.

    Each ``_`` is tried as a digit and as a class letter; the text must fit the
    grammar in exactly one arrangement of slots (a ``ValueError`` otherwise).
    """
    spelled = "".join(text.split())
    holes = [i for i, ch in enumerate(spelled) if ch == UNREAD]
    stand_ins = (DEVANAGARI[DIGITS[0]], CLASS_LETTERS["pa"])
    found: dict[tuple[Slot, ...], list[tuple[Slot, str]]] = {}
    for filling in itertools.product(stand_ins, repeat=len(holes)):
        chars = list(spelled)
        for i, ch in zip(holes, filling, strict=True):
            chars[i] = ch
        parsed = parse("".join(chars))
        if parsed is not None:
            found.setdefault(tuple(slot for slot, _ in parsed), parsed)
    if len(found) != 1:
        raise ValueError(f"{text!r} fits the plate grammar in {len(found)} ways, not one")
    (parsed,) = found.values()
    zone_length = len(ZONES[parsed[0][1]])
    if any(i < zone_length for i in holes):
        raise ValueError(f"{text!r}: an unreadable zone is not scored")
    # After the zone every symbol is one character of the text: the hole at i is symbol i - zone + 1.
    unread = {i - zone_length + 1 for i in holes}
    return tuple(Symbol(slot, None if k in unread else label) for k, (slot, label) in enumerate(parsed))


def reads_exactly(symbols: Sequence[Symbol], read: Sequence[str]) -> bool:
    """Every symbol right in its place (:meth:`Symbol.accepts`), in a reading of the plate's length."""
    return len(read) == len(symbols) and all(s.accepts(r) for s, r in zip(symbols, read, strict=True))


def _compatible(a: str, b: str) -> bool:
    """Two texts that may be the same plate: equal wherever both were read."""
    return len(a) == len(b) and all(x == y or UNREAD in (x, y) for x, y in zip(a, b, strict=True))


def assign_splits(texts: Mapping[str, str], dataset: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each transcribed photo's split: the detector's, but a fitted photo whose text may be a held-out
    plate's (equal where both were read: twins carry the same text) is ``withheld``."""
    held, fitted = set(dataset["validation"]), set(dataset["fit"])
    unknown = sorted(set(texts) - held - fitted)
    if unknown:
        raise ValueError(f"photos in neither side of the detector's split: {unknown[:5]}")
    held_texts = [texts[name] for name in texts if name in held]
    splits = {}
    for name, text in texts.items():
        if name in held:
            splits[name] = "validation"
        elif any(_compatible(text, other) for other in held_texts):
            splits[name] = "withheld"
        else:
            splits[name] = "fit"
    return splits


def real_plates(root: str | Path, dataset: Mapping[str, Sequence[str]]) -> list[RealPlate]:
    """Every photo under ``root`` (``plate-photos/``) that has a transcription, parsed and split."""
    root = Path(root)
    texts: dict[str, str] = read_json(root / TRANSCRIPTIONS)
    splits = assign_splits(texts, dataset)
    return [
        RealPlate(photo, texts[photo.path.name], parse_text(texts[photo.path.name]), splits[photo.path.name])
        for photo in open_photos(root)
        if photo.path.name in texts
    ]
