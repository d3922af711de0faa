"""Where reports about models go: ``reports/``, apart from the model repository (``models/``), and how
every JSON file of the toolkit is written.

The model card, the plate evaluations and the figures describe a model; they
are not part of it, so the service's repository holds model files only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lpr.repository import DEFAULT_MODEL, REFERENCE_MODEL

#: The checkout, and its reports folder.
CHECKOUT = Path(__file__).resolve().parents[2]
REPORTS = CHECKOUT / "reports"
#: The four colour samples (real uploads) beside the checkout: the card reads them, ``ship`` draws them.
SAMPLES = CHECKOUT.parent / "shared" / "samples"

MODEL_CARD = "MODEL_CARD.md"
#: ``lpr-train plates`` on plates of test crops (what the card reports) and of validation crops.
PLATES_EVAL = "plates_eval.json"
PLATES_EVAL_VAL = "plates_eval_val.json"
#: The same plates with zone and class letters outside the model's twelve painted on some of them.
PLATES_EVAL_FOREIGN = "plates_eval_foreign.json"
PLATES_FIGURE = "plates_examples.png"
OOD_FIGURE = "ood_examples.png"
#: ``lpr-train evaluate --leave-one-source-out``: each source read by a model trained without it.
LOSO_REPORT = "loso.json"
#: Reliability diagrams of the shipped model, one curve per source (``lpr-train calibrate --figure``).
RELIABILITY_FIGURE = "reliability.png"


def figures_dir(reports: str | Path, name: str = DEFAULT_MODEL) -> Path:
    """A shipped model's figures: ``figures/`` for ``lpr-default``, ``reference/figures/`` for the
    reference, ``<name>/figures/`` for any other name."""
    reports = Path(reports)
    if name == DEFAULT_MODEL:
        return reports / "figures"
    if name == REFERENCE_MODEL:
        return reports / "reference" / "figures"
    return reports / name / "figures"


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as the toolkit's JSON: indented, Devanagari as itself, one final newline.

    One writer, so that run records, reports and model metadata diff cleanly against each other.
    """
    path = Path(path)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path


def read_json(path: str | Path) -> Any:
    """Read a JSON file the toolkit wrote (UTF-8: Devanagari is kept as itself)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
