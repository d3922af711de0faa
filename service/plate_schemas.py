"""Response model of ``POST /read-plate``: the contract the try-it page and clients code against.

The example is the served model's real answer to synthetic plate #8 of
``lpr-train plates`` (``service/examples.json``, cut to one character), so ``/docs``
shows what a client receives.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import EXAMPLES


class Box(BaseModel):
    """A character's axis-aligned box in the uploaded image's pixels (after EXIF rotation)."""

    x: int = Field(ge=0, description="Left edge.")
    y: int = Field(ge=0, description="Top edge.")
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class Candidate(BaseModel):
    label: str = Field(description="ASCII class id: 0-9, ba or pa.", examples=["pa"])
    devanagari: str = Field(examples=["प"])
    probability: float = Field(ge=0.0, le=1.0, description="The model's calibrated probability.")


class PlateCharacter(BaseModel):
    box: Box
    slot: Literal["zone", "lot", "class", "serial"] | None = Field(
        description="What the plate grammar says stands here (zone + lot + class letter + serial); "
        "null when the characters fit no plate layout."
    )
    label: str = Field(
        description="ASCII class id (0-9, ba, pa), or ? when the reader will not name the character.",
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
        description="unsupported_symbol: a zone or class letter belongs here that the model does not read "
        "(e.g. च on a car plate); low_confidence: the mark is not confidently one of the twelve symbols."
    )
    candidates: list[Candidate] = Field(
        description="The model's top symbols among its twelve, most probable first, whatever the slot."
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


_PLATE = EXAMPLES["read-plate"]
_EXAMPLE: dict[str, Any] = {
    **_PLATE,
    "rows": [{**row, "characters": row["characters"][:1]} for row in _PLATE["rows"][:1]]
    + [{**row, "characters": []} for row in _PLATE["rows"][1:]],
}


class PlateReading(BaseModel):
    """What was read on one plate: rows top to bottom, characters left to right."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    model_version: str = Field(description="Name and version of the model that answered.")
    filename: str | None = Field(None, description="The uploaded file's name, as the client sent it.")
    image: ImageSize = Field(description="Size of the decoded upload; boxes are in these pixels.")
    text: str = Field(
        description="The rows' texts joined by one space, ? for each unknown character; empty if none."
    )
    confident: bool = Field(
        description="Store without a second look: characters were found, they fit the plate grammar, and not "
        "one of them is unknown. One doubtful character makes the plate doubtful (any, not the average)."
    )
    matches_format: bool = Field(
        description="Whether the characters fit a zone + lot + class + serial layout."
    )
    readings: list[Reading] = Field(description="The most probable readings (up to 5), best first.")
    rows: list[PlateRow]
    count: int = Field(ge=0, description="Characters read, all rows together.")
    reason: str | None = Field(None, description="Why nothing was read; null when characters were found.")
