"""Response model of ``POST /read-plate``: the contract the try-it page and clients code against.

The example is the served model's real answer to synthetic plate #8 of
``lpr-train plates`` (``service/examples.json``, cut to one character), so ``/docs``
shows what a client receives.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import EXAMPLES


class Box(BaseModel):
    """A character's axis-aligned box in the uploaded image's pixels (after EXIF rotation)."""

    x: int = Field(ge=0, description="Left edge.")
    y: int = Field(ge=0, description="Top edge.")
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class PlateCharacter(BaseModel):
    box: Box
    label: str = Field(description="ASCII class id: 0-9, ba or pa.", examples=["ba"])
    devanagari: str = Field(description="The class as printed on the plate.", examples=["बा"])
    confidence: float = Field(
        ge=0.0,
        le=1.0,
        description=(
            "The model's calibrated probability of this label. The label itself is the most probable "
            "class the plate format allows here (बा first, प after the lot number, digits elsewhere), "
            "so a low value means the format overruled a doubtful mark."
        ),
    )
    unknown: bool = Field(
        description="Doubtful: the mark looks like none of the twelve symbols (its calibrated top "
        "probability is under the model's threshold), or the label the plate format chose is."
    )


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
    text: str = Field(description="The rows' texts joined by one space; empty when nothing was read.")
    rows: list[PlateRow]
    count: int = Field(ge=0, description="Characters read, all rows together.")
    reason: str | None = Field(None, description="Why nothing was read; null when characters were found.")
