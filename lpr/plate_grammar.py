"""The grammar of a Nepali zonal plate: zone + lot number + vehicle-class letter + serial.

``बा १८ प ५७६९``: the zone (one of 14), a lot number of one to three digits,
the vehicle-class letter, and a serial of one to four digits; in one row, or
zone, lot and class over the serial. The model reads twelve symbols only (the
digits, the zone बा and the class प); every other zone and class letter is
here so that the reader knows where such a letter *belongs* and can answer it
as ``?`` instead of forcing one of the twelve onto it.

This module is the one place for these facts; :mod:`lpr.plate_reader` decodes
every plate against :func:`layouts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from lpr.labels import DIGITS, LABELS

#: The 14 zones' letters, by ASCII id, as painted (first syllable of the zone's name, but Sagarmatha
#: is painted स, not सा: the transcribed real plates show it so).
ZONES: dict[str, str] = {
    "me": "मे",  # Mechi
    "ko": "को",  # Koshi
    "sa": "स",  # Sagarmatha
    "ja": "ज",  # Janakpur
    "ba": "बा",  # Bagmati
    "na": "ना",  # Narayani
    "ga": "ग",  # Gandaki
    "lu": "लु",  # Lumbini
    "dha": "ध",  # Dhaulagiri
    "ra": "रा",  # Rapti
    "bhe": "भे",  # Bheri
    "ka": "क",  # Karnali
    "se": "से",  # Seti
    "ma": "म",  # Mahakali
}

#: Vehicle-class letters, by ASCII id: प private motorcycle, च car or light vehicle, क heavy
#: vehicle; ह, त, ज and ख the other classes painted on zonal plates.
CLASS_LETTERS: dict[str, str] = {
    "pa": "प",
    "cha": "च",
    "ka": "क",
    "ha": "ह",
    "ta": "त",
    "ja": "ज",
    "kha": "ख",
}

#: Every letter a zone or class slot may hold, by ASCII id, zones first (ज and क are both): the
#: classes of the letter model (:mod:`lpr.letter_namer`) in its output order.
LETTERS: dict[str, str] = {**ZONES, **CLASS_LETTERS}

LOT_DIGITS: tuple[int, int] = (1, 3)
SERIAL_DIGITS: tuple[int, int] = (1, 4)

Slot = Literal["zone", "lot", "class", "serial"]
LETTER_SLOTS: frozenset[str] = frozenset({"zone", "class"})

#: Per letter slot, the letters of the grammar that are classes of the model (today बा and प).
READABLE: dict[str, frozenset[str]] = {
    "zone": frozenset(ZONES) & frozenset(LABELS),
    "class": frozenset(CLASS_LETTERS) & frozenset(LABELS),
}


def layouts(row_lengths: Sequence[int]) -> list[tuple[Slot, ...]]:
    """Every way characters in rows of these lengths can be zone + lot + class + serial.

    One row of ``n``: any lot length that leaves a serial of a valid length;
    two rows: zone, lot and class on top, the serial below. Anything else
    (three rows, two characters) fits no plate: an empty list.
    """
    found: list[tuple[Slot, ...]] = []
    if len(row_lengths) == 1:
        n = row_lengths[0]
        for lot in range(LOT_DIGITS[0], LOT_DIGITS[1] + 1):
            serial = n - lot - 2
            if SERIAL_DIGITS[0] <= serial <= SERIAL_DIGITS[1]:
                found.append(("zone", *("lot",) * lot, "class", *("serial",) * serial))
    elif len(row_lengths) == 2:
        top, serial = row_lengths
        lot = top - 2
        if LOT_DIGITS[0] <= lot <= LOT_DIGITS[1] and SERIAL_DIGITS[0] <= serial <= SERIAL_DIGITS[1]:
            found.append(("zone", *("lot",) * lot, "class", *("serial",) * serial))
    return found


def parse(text: str) -> list[tuple[Slot, str]] | None:
    """A plate written in Devanagari (``"बा १८ च ५७६९"``; spaces and a line break ignored) as
    ``(slot, ASCII id)`` pairs, or ``None`` when it is no zonal plate."""
    from lpr.labels import DEVANAGARI

    digit_of = {DEVANAGARI[d]: d for d in DIGITS}
    compact = "".join(text.split())
    # The longest zone that starts the text: से (Seti) begins with स (Sagarmatha).
    zone = max(
        (z for z, glyph in ZONES.items() if compact.startswith(glyph)),
        key=lambda z: len(ZONES[z]),
        default=None,
    )
    if zone is None:
        return None
    rest = compact[len(ZONES[zone]) :]
    lot = ""
    while rest and rest[0] in digit_of:
        lot, rest = lot + digit_of[rest[0]], rest[1:]
    klass = next((c for c, glyph in CLASS_LETTERS.items() if rest.startswith(glyph)), None)
    if klass is None or not LOT_DIGITS[0] <= len(lot) <= LOT_DIGITS[1]:
        return None
    serial = [digit_of.get(ch) for ch in rest[len(CLASS_LETTERS[klass]) :]]
    if None in serial or not SERIAL_DIGITS[0] <= len(serial) <= SERIAL_DIGITS[1]:
        return None
    return [
        ("zone", zone),
        *(("lot", d) for d in lot),
        ("class", klass),
        *(("serial", d) for d in serial if d is not None),
    ]
