"""The example answers in the README and the OpenAPI schema, read from the running service.

``python scripts/examples.py --write`` (``make examples``) starts the app
in-process with the default settings, sends it the colour samples
(``../shared/samples``), a text file and a synthetic plate composed from test
crops (plate #8 of ``lpr-train plates``' seed), and writes the answers to
``service/examples.json`` (which ``service/schemas.py`` shows in ``/docs``)
and into the README's ``<!-- example: NAME -->`` blocks. ``--check`` (and
``tests/test_examples.py``) fails when either has drifted from what the
service answers, so a new model or a changed answer shape cannot leave stale
examples behind.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "samples"
TEST_CROPS = SHARED / "data" / "lpr" / "test"
EXAMPLES = ROOT / "service" / "examples.json"
README = ROOT / "README.md"

#: Not an image: what the batch and error examples upload beside the crops.
NOTES = b"plates to check tomorrow\n"
#: Sent as X-Request-Id, so the ids in the examples (error bodies carry theirs) stay the same.
REQUEST_ID = "7d0c5e1f9a2b4c3d8e6f1a2b3c4d5e6f"
#: The synthetic plate shown for /read-plate: plate #8 of the shipped plate evaluation's seed.
PLATE_INDEX = 8

BLOCK = re.compile(
    r"(<!-- example: (?P<name>[\w-]+) -->\n```json\n)(?P<body>.*?)(\n```\n<!-- /example -->)", re.S
)


def plate_png() -> bytes:
    from training.synthesis.plates import DEFAULT_SEED, generate_plates

    plates = list(generate_plates(TEST_CROPS, count=PLATE_INDEX + 1, seed=DEFAULT_SEED))
    buffer = io.BytesIO()
    plates[PLATE_INDEX].image.save(buffer, format="PNG")
    return buffer.getvalue()


def collect() -> dict[str, Any]:
    """Every example, as the service answers it now."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from service.config import Settings
    from service.main import create_app

    sample = {name: (SAMPLES / f"{name}.png").read_bytes() for name in ("1", "ba", "pa")}
    with TestClient(create_app(Settings()), headers={"x-request-id": REQUEST_ID}) as client:
        predict = client.post("/predict", files={"file": ("ba.png", sample["ba"], "image/png")})
        batch = client.post(
            "/predict/batch",
            files=[
                ("files", ("1.png", sample["1"], "image/png")),
                ("files", ("pa.png", sample["pa"], "image/png")),
                ("files", ("notes.txt", NOTES, "text/plain")),
            ],
        )
        plate = client.post("/read-plate", files={"file": ("plate.png", plate_png(), "image/png")})
        error = client.post("/predict", files={"file": ("notes.txt", NOTES, "text/plain")})
    answers = {"predict": predict, "batch": batch, "read-plate": plate, "error": error}
    for name, response in answers.items():
        expected = 415 if name == "error" else 200
        if response.status_code != expected:
            raise RuntimeError(f"{name}: status {response.status_code}: {response.text}")
    return {name: response.json() for name, response in answers.items()}


def _shown(name: str, answer: dict[str, Any]) -> Any:
    """What the README shows: the whole answer, with long repeated lists cut to their first entry."""
    answer = json.loads(json.dumps(answer))
    if name == "predict":
        rest = len(answer["probabilities"]) - 3
        answer["probabilities"] = [*answer["probabilities"][:3], f"… {rest} more"]
    elif name == "batch":
        for result in answer["results"]:
            if "probabilities" in result:
                rest = len(result["probabilities"]) - 1
                result["probabilities"] = [result["probabilities"][0], f"… {rest} more"]
        # The first answer and the failed file; the answers between them look like the first.
        results = answer["results"]
        if len(results) > 2:
            answer["results"] = [results[0], f"… {len(results) - 2} more like it", results[-1]]
    elif name == "read-plate":
        rest = len(answer["readings"]) - 1
        answer["readings"] = answer["readings"][:1] + ([f"… {rest} more"] if rest > 0 else [])
        for index, row in enumerate(answer["rows"]):
            for character in row["characters"]:
                rest = len(character["candidates"]) - 1
                character["candidates"] = [character["candidates"][0], f"… {rest} more"]
            count = len(row["characters"])
            if index == 0:
                row["characters"] = [row["characters"][0], f"… {count - 1} more"]
            else:
                row["characters"] = [f"… {count} characters"]
        # Each plate found repeats, for the best one, the reading shown at the top level.
        answer["plates"] = [
            {**{k: plate[k] for k in ("box", "score", "rotation")}, "…": "as above"}
            for plate in answer["plates"]
        ]
    return answer


def compact(value: Any, indent: int = 0, width: int = 108) -> str:
    """JSON with every object or list that fits on one line kept on one line."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if len(flat) + indent <= width or not isinstance(value, dict | list) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)}: {compact(v, indent + 2, width)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + compact(v, indent + 2, width) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def render_readme(text: str, examples: dict[str, Any]) -> str:
    """The README with every example block replaced by the answer it names."""

    def block(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in examples:
            raise KeyError(f"README names example {name!r}; examples.json has {sorted(examples)}")
        return match.group(1) + compact(_shown(name, examples[name])) + match.group(4)

    return BLOCK.sub(block, text)


def dump(examples: dict[str, Any]) -> str:
    return json.dumps(examples, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite service/examples.json and the README")
    mode.add_argument("--check", action="store_true", help="fail if either differs from the service")
    args = parser.parse_args(argv)
    examples = collect()
    readme = render_readme(README.read_text(encoding="utf-8"), examples)
    if args.write:
        EXAMPLES.write_text(dump(examples), encoding="utf-8")
        README.write_text(readme, encoding="utf-8")
        print(f"wrote {EXAMPLES.relative_to(ROOT)} and the examples in {README.relative_to(ROOT)}")
        return 0
    stale = [
        path.relative_to(ROOT)
        for path, fresh in ((EXAMPLES, dump(examples)), (README, readme))
        if not path.exists() or path.read_text(encoding="utf-8") != fresh
    ]
    if stale:
        print(f"stale examples in {', '.join(map(str, stale))}: run `make examples`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
