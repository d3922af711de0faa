"""Fit the temperature and the "unknown" threshold of a shipped model, and measure both.

Both are chosen on the validation split the model was trained against (rebuilt
from the seed and fraction in its metadata, exactly as ``training/fitting/train.py``
carved it), never on test. The test split and a seeded out-of-class set
(:mod:`training.synthesis.ood`) then say how well they work, and the result is written
into the model's metadata, where the service reads it.

* Temperature: the ``T`` minimising the negative log-likelihood of
  ``softmax(log(p) / T)`` on validation (Guo et al., 2017).
* Threshold: the largest ``t`` that flags at most :data:`MAX_VALIDATION_FLAGGED`
  of the validation crops as unknown. A share, not a number of crops, so the
  rule reads the same for any split size; with 242 validation crops it flags
  one. Answers below ``t`` are mostly wrong ones anyway: flagging them is what
  a user wants.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from lpr.confidence import apply_temperature, unknown
from lpr.labels import LABELS
from lpr.model import ModelMetadata
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from lpr.plate_reader import read_plate
from lpr.preprocessing import InputSpec
from lpr.repository import METADATA_FILE, MODEL_FILE
from training.common.metrics import expected_calibration_error
from training.common.outputs import (
    OOD_FIGURE,
    RELIABILITY_FIGURE,
    REPORTS,
    figures_dir,
    read_json,
    write_json,
)
from training.data.sources import model_splits
from training.evaluation.calibration_figures import ood_figure, reliability_figure
from training.evaluation.source_eval import EvaluatedSet, evaluated_sets, source_reports
from training.release.quantize import int8_folder
from training.synthesis.ood import FULL, KINDS, OODCrop, Vocabulary, generate, holdout_split, render
from training.synthesis.ood import load as load_ood
from training.synthesis.plates import Plate, generate_plates

#: Share of in-class validation crops the threshold may flag.
MAX_VALIDATION_FLAGGED = 0.005
#: Bounds of the temperature search: wide enough for any sane model.
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: Size and seed of the out-of-class evaluation set written into the metadata.
OOD_SIZE = 2000
OOD_SEED = 2024
#: Single symbols reported one by one (20 renders each): the issue's example च, two
#: other letters, and Latin O, which is drawn like the digit ० and cannot be told apart.
PROBES: tuple[tuple[str, str], ...] = (
    ("च", "devanagari"),
    ("क", "devanagari"),
    ("र", "devanagari"),
    ("O", "latin"),
)
PROBE_RENDERS = 20
#: The plate bar is fitted on this many plates composed from validation crops (seed), so
#: that at most this share of them is answered confident and wrong.
PLATE_FIT_COUNT = 1000
PLATE_FIT_SEED = 7
MAX_PLATES_CONFIDENT_AND_WRONG = 0.01


def _log(probabilities: np.ndarray) -> np.ndarray:
    # float32 softmax can underflow to exactly 0; the smallest float32 keeps log finite.
    return np.log(np.maximum(probabilities.astype(np.float64), np.finfo(np.float32).tiny))


def nll(probabilities: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true labels after temperature ``T``."""
    z = _log(probabilities) / temperature
    z -= z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The NLL-minimising temperature (bounded scalar search; NLL is convex in ``1/T``)."""
    result = minimize_scalar(
        lambda t: nll(probabilities, labels, t),
        bounds=TEMPERATURE_BOUNDS,
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(result.x)


def choose_threshold(confidence: np.ndarray, max_flagged: float = MAX_VALIDATION_FLAGGED) -> float:
    """Largest ``t`` with ``mean(confidence < t) <= max_flagged``.

    That is the ``k+1``-th smallest confidence, ``k = floor(max_flagged * n)``:
    exactly the ``k`` least confident crops fall below it.
    """
    ordered = np.sort(confidence)
    k = int(np.floor(max_flagged * len(ordered)))
    return float(ordered[min(k, len(ordered) - 1)])


def choose_plate_threshold(
    confident: np.ndarray,
    worst: np.ndarray,
    right: np.ndarray,
    max_share: float = MAX_PLATES_CONFIDENT_AND_WRONG,
) -> float:
    """Lowest bar on a plate's least probable character keeping confident-and-wrong plates at most
    ``max_share``; ``confident``: the plates confident before the bar, ``worst``: each plate's
    least probable character, ``right``: read exactly.

    The lowest, because every notch above it sends more right plates to a person for nothing.
    Rounded up to the metadata's six decimals, so the rounded bar still excludes what it must.
    """
    for bar in np.unique(np.concatenate([[0.0], worst])):
        if np.mean(confident & (worst >= bar) & ~right) <= max_share:
            return math.ceil(float(bar) * 1e6) / 1e6
    return 1.0


def fit_plate_threshold(onnx_path: Path, meta: dict, inputs: EvaluationInputs) -> dict:
    """The ``plate_threshold`` of a calibration block, fitted on ``inputs.plates``.

    ``meta`` already holds the block's temperature and crop thresholds: the plates
    are read exactly as the service reads them, then the bar is chosen.
    """
    reader_meta = ModelMetadata.from_dict(meta)
    session = onnx_session(onnx_path)

    def classify(x: np.ndarray) -> np.ndarray:
        return onnx_predict(session, x)

    confident, worst, right = [], [], []
    for plate in inputs.plates:
        reading = read_plate(plate.image, classify, reader_meta)
        characters = reading.characters
        confident.append(reading.all_known)  # confident but for the bar being fitted
        worst.append(min((c.confidence for c in characters), default=0.0))
        right.append(reading.labels == plate.rows)
    confident_, worst_, right_ = np.array(confident), np.array(worst), np.array(right)
    bar = choose_plate_threshold(confident_, worst_, right_)
    kept = confident_ & (worst_ >= bar)
    return {
        "plate_threshold": bar,
        "plate_threshold_rule": (
            f"lowest bar on every character keeping confident-and-wrong plates at most "
            f"{MAX_PLATES_CONFIDENT_AND_WRONG:.0%} of {PLATE_FIT_COUNT} plates composed from validation "
            f"crops (seed {PLATE_FIT_SEED})"
        ),
        "plate_validation": {
            "confident_before": round(float(confident_.mean()), 4),
            "confident_and_wrong_before": round(float((confident_ & ~right_).mean()), 4),
            "confident": round(float(kept.mean()), 4),
            "confident_and_wrong": round(float((kept & ~right_).mean()), 4),
        },
    }


def _ood_report(flagged: np.ndarray, crops: list[OODCrop], worst: int = 5) -> dict:
    """Share flagged overall, per kind and per style, and how many symbols are never flagged."""
    kinds = np.array([c.kind for c in crops])
    styles = np.array([c.style for c in crops])

    def share(members: np.ndarray) -> dict:
        return {"n": int(members.sum()), "flagged": round(float(flagged[members].mean()), 4)}

    per_symbol: dict[str, list[bool]] = {}
    for crop, flag in zip(crops, flagged.tolist(), strict=True):
        if crop.symbol:
            per_symbol.setdefault(crop.symbol, []).append(flag)
    rates = {symbol: float(np.mean(flags)) for symbol, flags in per_symbol.items()}
    return {
        "n": len(crops),
        "seed": OOD_SEED,
        "flagged": round(float(flagged.mean()), 4),
        "per_kind": {kind: share(kinds == kind) for kind in KINDS if (kinds == kind).any()},
        "per_style": {style: share(styles == style) for style in sorted(Counter(styles.tolist()))},
        "symbols_never_flagged": f"{sum(r == 0.0 for r in rates.values())}/{len(rates)}",
        "most_flagged_symbols": {
            s: round(r, 3) for s, r in sorted(rates.items(), key=lambda item: (-item[1], item[0]))[:worst]
        },
    }


def _probe_report(q: np.ndarray, threshold: float) -> dict:
    """Per probe symbol: share flagged, the class it is most often read as, median confidence."""
    report = {}
    for i, (symbol, _) in enumerate(PROBES):
        rows = q[i * PROBE_RENDERS : (i + 1) * PROBE_RENDERS]
        answers = Counter(LABELS[k] for k in rows.argmax(axis=1))
        report[symbol] = {
            "renders": len(rows),
            "flagged": round(float(unknown(rows, threshold).mean()), 4),
            "read_as": answers.most_common(1)[0][0],
            "median_confidence": round(float(np.median(rows.max(axis=1))), 4),
        }
    return report


@dataclass(frozen=True)
class EvaluationInputs:
    """Preprocessed validation, test and out-of-class crops: built once, scored per model file."""

    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_ood: np.ndarray
    ood: list[OODCrop]
    x_probe: np.ndarray
    #: A multi-source model's sets, source by source (:mod:`training.evaluation.source_eval`).
    sources: tuple[EvaluatedSet, ...] = ()
    #: Plates composed from the (first source's) validation crops: where the plate bar is fitted.
    plates: tuple[Plate, ...] = ()

    @classmethod
    def build(
        cls,
        meta: dict,
        data: str | Path | None = None,
        ood_size: int = OOD_SIZE,
        vocabulary: Vocabulary = FULL,
    ) -> EvaluationInputs:
        """``vocabulary``: the out-of-class symbols and fonts, e.g. the held-out half of
        :func:`training.synthesis.ood.holdout_split` for a model trained with outlier exposure."""
        spec = InputSpec.from_dict(meta["preprocessing"])
        splits = model_splits(meta, data)
        val, test = splits.val, splits.test
        crops = list(generate(ood_size, seed=OOD_SEED, vocabulary=vocabulary))
        probes = [
            OODCrop(kind, symbol, "binary", render(symbol, seed=s, kind=kind))
            for symbol, kind in PROBES
            for s in range(PROBE_RENDERS)
        ]
        # The plates' crops are the headline source's validation crops (the LPR ones for a
        # multi-source model), as `lpr-train plates --split val` composes them.
        plate_crops = (splits.sources[0].val if splits.sources else val).by_class()
        return cls(
            val.load(spec),
            val.labels,
            test.load(spec),
            test.labels,
            load_ood(crops, spec),
            crops,
            load_ood(probes, spec),
            tuple(evaluated_sets(splits, spec)),
            tuple(generate_plates(plate_crops, count=PLATE_FIT_COUNT, seed=PLATE_FIT_SEED)),
        )


def calibrate_model(onnx_path: Path, inputs: EvaluationInputs) -> dict:
    """Fit ``T`` and the threshold on validation; measure them on test and on out-of-class crops."""
    session = onnx_session(onnx_path)
    p_val, p_test, p_ood = (onnx_predict(session, x) for x in (inputs.x_val, inputs.x_test, inputs.x_ood))
    y_val, y_test = inputs.y_val, inputs.y_test
    # Rounded before anything is measured, so the figures are those of the values the service reads.
    temperature = round(fit_temperature(p_val, y_val), 4)
    q_val, q_test, q_ood = (apply_temperature(p, temperature) for p in (p_val, p_test, p_ood))
    threshold = round(choose_threshold(q_val.max(axis=1)), 6)
    # A plate's letter slot reads बा or प only above its own bar: the same rule on the
    # validation letters' probability of their own letter (what the plate reader compares).
    letters = [k for k, label in enumerate(LABELS) if not label.isdigit()]
    is_letter = np.isin(y_val, letters)
    letter_threshold = round(choose_threshold(q_val[is_letter, y_val[is_letter]]), 6)
    test_letters = np.isin(y_test, letters)
    test_flagged = unknown(q_test, threshold)
    test_wrong = q_test.argmax(axis=1) != y_test
    block = {
        "temperature": temperature,
        "threshold": threshold,
        "fitted_on": "validation",
        "validation_size": len(y_val),
        "threshold_rule": f"largest flagging at most {MAX_VALIDATION_FLAGGED:.1%} of validation crops",
        "nll_validation_before": round(nll(p_val, y_val, 1.0), 4),
        "nll_validation_after": round(nll(p_val, y_val, temperature), 4),
        "ece_validation_before": round(expected_calibration_error(p_val, y_val), 4),
        "ece_validation_after": round(expected_calibration_error(q_val, y_val), 4),
        "ece_test_before": round(expected_calibration_error(p_test, y_test), 4),
        "ece_test_after": round(expected_calibration_error(q_test, y_test), 4),
        "letter_threshold": letter_threshold,
        "letter_threshold_rule": (
            f"largest flagging at most {MAX_VALIDATION_FLAGGED:.1%} of the {int(is_letter.sum())} validation "
            "बा and प crops, on the probability of their own letter"
        ),
        "letter_test_flagged": round(
            float((q_test[test_letters, y_test[test_letters]] < letter_threshold).mean()), 4
        ),
        "test_size": len(y_test),
        "in_class_test_flagged": round(float(test_flagged.mean()), 4),
        "test_errors_flagged": f"{int((test_flagged & test_wrong).sum())}/{int(test_wrong.sum())}",
        "ood": _ood_report(unknown(q_ood, threshold), inputs.ood),
        "probes": _probe_report(
            apply_temperature(onnx_predict(session, inputs.x_probe), temperature), threshold
        ),
    }
    if inputs.sources:
        block["sources"] = source_reports(
            lambda x: onnx_predict(session, x), list(inputs.sources), temperature, threshold
        )
    return block


def summary(block: dict) -> str:
    """The figures that matter, for the CLI: one line, plus one per source set of a multi-source model."""
    kinds = ", ".join(f"{kind} {v['flagged']:.1%}" for kind, v in block["ood"]["per_kind"].items())
    per_source = "".join(
        f"\n  {source} {split}: "
        + (
            f"{r['flagged']:.1%} of {r['n']} flagged"
            if "accuracy" not in r
            else f"{r['accuracy']:.2%} of {r['n']} right (worst {r['worst_class']} "
            f"{r['per_class_accuracy'][r['worst_class']]:.1%}), ECE {r['ece']:.4f}, flagged "
            f"{r['flagged']:.2%}, wrong and not flagged {r['wrong_not_flagged']:.2%}"
        )
        for source, sets in block.get("sources", {}).items()
        for split, r in sets.items()
    )
    return (
        f"T {block['temperature']:.3f}, threshold {block['threshold']:.4f} (fitted on "
        f"{block['validation_size']} validation crops), plate letter slots "
        f"{block.get('letter_threshold', block['threshold']):.4f}, confident plates "
        f"{block.get('plate_threshold', block['threshold']):.4f}; "
        f"test ECE {block['ece_test_before']:.4f} -> "
        f"{block['ece_test_after']:.4f}; in-class test crops flagged {block['in_class_test_flagged']:.2%} "
        f"(errors flagged {block['test_errors_flagged']}); out-of-class flagged "
        f"{block['ood']['flagged']:.1%} of {block['ood']['n']} ({kinds})"
    ) + per_source


def calibrate_run(
    run: str | Path,
    data: str | Path | None = None,
    figure: bool = False,
    reports: str | Path = REPORTS,
) -> dict[str, dict]:
    """Calibrate a run's model and its int8 copy; add a ``calibration`` block to each ``model.json``.

    Runs before ``lpr-train ship`` (and after ``quantize``, so the int8 copy is
    calibrated too): a shipped version never changes, so its bars are fitted on
    the run. Each copy gets its own fit (its probabilities differ slightly).
    Only the ``calibration`` key is written; everything else in the record is
    kept. Keyed by ``"<name> <version>"``.
    """
    run = Path(run)
    record = read_json(run / METADATA_FILE)
    # A model trained on out-of-class crops (outlier exposure) is measured on the symbols
    # it never saw, or the flagged share would measure memorisation.
    exposed = bool(record["training"]["recipe"].get("outlier_exposure"))
    inputs = EvaluationInputs.build(record, data, vocabulary=holdout_split()[1] if exposed else FULL)
    folders = [run] + [f for f in (int8_folder(run),) if (f / METADATA_FILE).is_file()]
    results: dict[str, dict] = {}
    for folder in folders:
        meta = read_json(folder / METADATA_FILE)
        block = calibrate_model(folder / MODEL_FILE, inputs)
        block["ood"]["symbols"] = "held-out half (training.ood.holdout_split)" if exposed else "all"
        block.update(fit_plate_threshold(folder / MODEL_FILE, {**meta, "calibration": block}, inputs))
        meta["calibration"] = block
        write_json(folder / METADATA_FILE, meta)
        results[f"{meta['name']} {meta['version']}"] = block
        if figure and folder == run:
            _figures(folder / MODEL_FILE, block, inputs, figures_dir(reports))
    return results


def _figures(onnx: Path, block: dict, inputs: EvaluationInputs, figures: Path) -> None:
    """The out-of-class examples and, for a multi-source model, every source's reliability diagram."""
    figures.mkdir(parents=True, exist_ok=True)
    ood_figure(onnx, block, inputs.x_ood, inputs.ood, figures / OOD_FIGURE)
    if inputs.sources:
        reliability_figure(onnx, block, inputs.sources, figures / RELIABILITY_FIGURE)
