"""The example answers shown to users (README, ``/docs``) are what the service really answers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import examples  # noqa: E402  (scripts/examples.py, not a package)


def _close(a: Any, b: Any, where: str = "") -> None:
    """Equal, except floats within 1e-4 (another ONNX Runtime build may round the last digits apart)."""
    if isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, abs_tol=1e-4), f"{where}: {a} != {b}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} != {len(b)} entries"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{index}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return json.loads(examples.EXAMPLES.read_text(encoding="utf-8"))


def test_the_shipped_examples_are_what_the_service_answers_now(shipped: dict[str, Any]) -> None:
    """A new model or answer shape without `make examples` leaves stale examples: this fails then."""
    _close(examples.collect(), shipped, "examples")


def test_the_readme_shows_the_shipped_examples(shipped: dict[str, Any]) -> None:
    readme = examples.README.read_text(encoding="utf-8")
    names = [match["name"] for match in examples.BLOCK.finditer(readme)]
    assert {"predict", "batch", "read-plate", "error"} <= set(names), names
    assert examples.render_readme(readme, shipped) == readme, "README examples drifted: run `make examples`"


def test_the_openapi_schema_shows_the_shipped_examples(client: TestClient, shipped: dict[str, Any]) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    (prediction,) = schemas["Prediction"]["examples"]
    assert prediction == {**shipped["predict"], "probabilities": shipped["predict"]["probabilities"][:3]}
    (batch,) = schemas["BatchResponse"]["examples"]
    assert [r["filename"] for r in batch["results"]] == [r["filename"] for r in shipped["batch"]["results"]]
    (plate,) = schemas["PlateReading"]["examples"]
    assert plate["text"] == shipped["read-plate"]["text"]
    assert schemas["ErrorResponse"]["examples"] == [shipped["error"]]
