"""Shared fixtures: the shipped model, the colour samples, and crafted bad uploads.

The tests run against the default settings (the newest version of the served model in
``models/``); set ``LPR_MODEL_NAME`` / ``LPR_MODEL_VERSION`` (or ``LPR_MODEL_PATH``) to try
another model.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

with warnings.catch_warnings():
    # Starlette nags about httpx vs httpx2 when the test client is first imported.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "samples"
TEST_CROPS = SHARED / "data" / "lpr" / "test"
SAMPLE_CLASSES = ("1", "8", "ba", "pa")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """One app for the session: loading the model once keeps the suite fast."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def make_client(**overrides: object) -> TestClient:
    """A fresh app with some settings changed (use as a context manager)."""
    return TestClient(create_app(Settings(**overrides)))


@pytest.fixture(scope="session")
def samples() -> dict[str, bytes]:
    """The four colour crops users upload, keyed by true class."""
    return {name: (SAMPLES / f"{name}.png").read_bytes() for name in SAMPLE_CLASSES}


@pytest.fixture(scope="session")
def test_crops() -> list[tuple[str, bytes]]:
    """``(true class, bytes)`` for 64 dataset test crops, several of every class."""
    paths = sorted(TEST_CROPS.glob("*/*.jpg"))
    assert paths, f"no dataset crops under {TEST_CROPS}"
    by_class: dict[str, list[Path]] = {}
    for path in paths:
        by_class.setdefault(path.parent.name, []).append(path)
    chosen = [p for i in range(10) for group in by_class.values() if i < len(group) for p in [group[i]]]
    return [(p.parent.name, p.read_bytes()) for p in chosen[:64]]


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A real decompression bomb: a valid ~50 KB PNG whose pixels would fill hundreds of megabytes."""
    raw_rows = b"\x00" * ((1 + (width + 7) // 8) * height)  # filter byte + 1-bit black pixels per row
    idat = zlib.compress(raw_rows, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def bomb() -> bytes:
    return png_bomb()
