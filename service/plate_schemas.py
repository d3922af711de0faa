"""The JSON of ``POST /read-plate``: its contract, and the one function that writes it.

The pydantic models are the contract the try-it page, ``/docs`` and the tests
code against; :func:`plate_answer` turns the core's typed reading
(:class:`lpr.photo_reader.PhotoReading`) into that shape as plain dicts, which
the route encodes with orjson (no pydantic validation per request). The
example is the served model's real answer to synthetic plate #8 of
``lpr-train plates`` (``service/examples.json``, cut to one character), so ``/docs``
shows what a client receives.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lpr import photo_reader, plate_reader
from service.schemas import EXAMPLES


class Box(BaseModel):
    """An axis-aligned box in the pixels of the upright image (the upload after its EXIF rotation)."""

    x: int = Field(ge=0, description="Left edge.")
    y: int = Field(ge=0, description="Top edge.")
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class Candidate(BaseModel):
    label: str = Field(
        description="ASCII class id: 0-9, ba or pa; for a letter named by the letter model, a letter id "
        "(GET /model's plate-letters runner; ko, cha, ...).",
        examples=["pa"],
    )
    devanagari: str = Field(examples=["प"])
    probability: float = Field(ge=0.0, le=1.0, description="The model's calibrated probability.")


class PlateCharacter(BaseModel):
    box: Box
    slot: Literal["zone", "lot", "class", "serial"] | None = Field(
        description="What the plate grammar says stands here (zone + lot + class letter + serial); "
        "null when the characters fit no plate layout."
    )
    label: str = Field(
        description="ASCII class id (0-9, ba, pa), a zone or class letter's id named by the letter model "
        "(me ko sa ja ba na ga lu dha ra bhe ka se ma; pa cha ka ha ta ja kha), or ? when the reader will "
        "not name the character.",
        examples=["ba"],
    )
    devanagari: str = Field(description="The label as printed on the plate, or ?.", examples=["बा"])
    confidence: float = Field(
        ge=0.0,
        le=1.0,
        description=(
            "The model's calibrated probability of the most probable symbol its slot allows (the label "
            "shown, or for ? the one it would have been); never raised by the grammar."
        ),
    )
    unknown: bool = Field(description="True when the character is answered ?: see reason.")
    reason: Literal["unsupported_symbol", "low_confidence"] | None = Field(
        description="unsupported_symbol: a zone or class letter belongs here that neither the character "
        "model nor the letter model names surely; low_confidence: the mark is not confidently one of the "
        "twelve symbols, or the two models name different letters."
    )
    candidates: list[Candidate] = Field(
        description="The model's top symbols among its twelve, most probable first, whatever the slot; for a "
        "letter named by the letter model, its top letters."
    )


class Reading(BaseModel):
    text: str = Field(
        description="The reading in Devanagari, rows joined by one space.", examples=["बा९प ४६५९"]
    )
    labels: list[str] = Field(
        description="ASCII ids in reading order; ? for a letter the model does not read."
    )
    score: float = Field(
        ge=0.0, le=1.0, description="Product of the characters' calibrated probabilities in this reading."
    )
    matches_format: bool = Field(description="Whether the reading is a zone + lot + class + serial plate.")


class PlateRow(BaseModel):
    text: str = Field(description="The row in Devanagari, no spaces.", examples=["बा९३प"])
    labels: list[str] = Field(
        description="ASCII class ids, left to right.", examples=[["ba", "9", "3", "pa"]]
    )
    characters: list[PlateCharacter] = Field(description="Left to right.")


class ImageSize(BaseModel):
    width: int
    height: int


class FoundPlate(BaseModel):
    """One plate found in the image, and what was read on it."""

    box: Box = Field(description="The plate in the upright image; the whole image for a tight crop.")
    score: float = Field(ge=0.0, le=1.0, description="The detector's confidence that a plate is there.")
    rotation: Literal[0, 90, 180, 270] = Field(
        description="Degrees (counter-clockwise) the plate was turned to be read upright: photos are often "
        "taken sideways."
    )
    text: str = Field(description="The rows' texts joined by one space, ? for each unknown character.")
    confident: bool = Field(
        description="Store without a second look: characters were found, they fit the plate grammar, not "
        "one of them is unknown, no letter was named by the letter model (its names are read, not yet "
        "stored unseen), and every character's confidence reaches the model's plate bar "
        "(calibration.plate_threshold in GET /model). One doubtful character makes the plate doubtful "
        "(any, not the average)."
    )
    matches_format: bool = Field(
        description="Whether the characters fit a zone + lot + class + serial layout."
    )
    readings: list[Reading] = Field(description="The most probable readings (up to 5), best first.")
    rows: list[PlateRow] = Field(description="Rows top to bottom; character boxes in the upright image.")
    count: int = Field(ge=0, description="Characters read, all rows together.")
    reason: str | None = Field(None, description="Why no character was read; null when some were.")


_PLATE = EXAMPLES["read-plate"]


def _cut(plate: dict[str, Any]) -> dict[str, Any]:
    """A plate answer with one character, so the schema's example stays readable."""
    return {
        **plate,
        "rows": [{**row, "characters": row["characters"][:1]} for row in plate["rows"][:1]]
        + [{**row, "characters": []} for row in plate["rows"][1:]],
    }


_EXAMPLE: dict[str, Any] = {**_cut(_PLATE), "plates": [_cut(p) for p in _PLATE.get("plates", [])]}


class PlateReading(BaseModel):
    """Every plate in the image, best first; the best one's reading repeated at the top level.

    A tight crop of a plate is one plate whose box is the whole image, so a
    client of plate crops reads the top level as before. A photo with no plate
    is a 200 with ``plates: []`` and a ``reason``.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    model_version: str = Field(description="Name and version of the model that read the characters.")
    detector_version: str = Field(description="Name and version of the model that found the plates.")
    filename: str | None = Field(None, description="The uploaded file's name, as the client sent it.")
    image: ImageSize = Field(description="Size of the upright image (after EXIF rotation); boxes are in it.")
    text: str = Field(
        description="The best plate's rows joined by one space, ? for each unknown character; empty if none."
    )
    confident: bool = Field(
        description="The best plate may be stored without a second look (see plates[].confident); false when "
        "no plate was found."
    )
    matches_format: bool = Field(
        description="Whether the best plate's characters fit a zone + lot + class + serial layout."
    )
    readings: list[Reading] = Field(
        description="The best plate's most probable readings (up to 5), best first."
    )
    rows: list[PlateRow] = Field(description="The best plate's rows.")
    count: int = Field(ge=0, description="Characters read on the best plate.")
    reason: str | None = Field(
        None, description="Why nothing was read (no plate found, or no character on it); null otherwise."
    )
    plates: list[FoundPlate] = Field(description="Every plate found (at most 5), the detector's best first.")


def _box(box: plate_reader.Box) -> dict[str, int]:
    return {"x": box.x, "y": box.y, "width": box.width, "height": box.height}


def _character(c: plate_reader.Character) -> dict[str, Any]:
    return {
        "box": _box(c.box),
        "slot": c.slot,
        "label": c.label,
        "devanagari": c.devanagari,
        "confidence": c.confidence,
        "unknown": c.unknown,
        "reason": c.reason,
        "candidates": [
            {"label": k.label, "devanagari": k.devanagari, "probability": k.probability} for k in c.candidates
        ],
    }


def _plate(plate: photo_reader.PlateInPhoto) -> dict[str, Any]:
    """One entry of ``plates`` (:class:`FoundPlate`)."""
    reading = plate.reading
    return {
        "box": _box(plate.box),
        "score": round(plate.score, 6),
        "rotation": plate.rotation,
        "text": reading.text,
        "confident": reading.confident,
        "matches_format": reading.matches_format,
        "readings": [
            {"text": r.text, "labels": list(r.labels), "score": r.score, "matches_format": r.matches_format}
            for r in reading.readings
        ],
        "rows": [
            {"text": row.text, "labels": row.labels, "characters": [_character(c) for c in row.characters]}
            for row in reading.rows
        ],
        "count": reading.count,
        "reason": reading.reason,
    }


def plate_answer(
    photo: photo_reader.PhotoReading, filename: str | None, model_version: str, detector_version: str
) -> dict[str, Any]:
    """The ``/read-plate`` answer (:class:`PlateReading`): every plate, the best one's at the top level.

    The top level is what a client of plate crops has always read (a tight
    crop is one plate whose box is the whole image); ``plates`` is every plate
    found, best first. With no plate, the top level is empty and says why.
    """
    plates = [_plate(plate) for plate in photo.plates]
    best = plates[0] if plates else None
    return {
        "model_version": model_version,
        "detector_version": detector_version,
        "filename": filename,
        "image": {"width": photo.width, "height": photo.height},
        "text": best["text"] if best else "",
        "confident": best["confident"] if best else False,
        "matches_format": best["matches_format"] if best else False,
        "readings": best["readings"] if best else [],
        "rows": best["rows"] if best else [],
        "count": best["count"] if best else 0,
        "reason": best["reason"] if best else photo.reason,
        "plates": plates,
    }
