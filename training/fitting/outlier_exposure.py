"""Outlier exposure (Hendrycks et al., 2019): out-of-class crops trained towards "no class".

Temperature scaling cannot make a model doubt a crop it reads as a class with
0.99 (the issue's च read as प): only training can. Outlier exposure adds crops
of things that are none of the twelve symbols (:mod:`training.synthesis.ood`) to the fit
set with a *uniform* target over the twelve classes, so cross-entropy teaches
the unchanged 12-way softmax to spread its mass on them; the rejection
threshold of :mod:`training.evaluation.calibration` then flags them.

Mixed into the same batches, the outliers' share of the fit set is the weight
``lambda`` of Hendrycks et al.'s out-of-class loss term. Honest evaluation
needs outliers the model never saw: training draws only from the training
half of :func:`training.synthesis.ood.holdout_split` (half the symbols, not the held-out
fonts) and from a seed other than :data:`training.evaluation.calibration.OOD_SEED`.

NumPy only, so the construction can be tested without TensorFlow.
"""

from __future__ import annotations

import numpy as np

from lpr.labels import NUM_CLASSES
from lpr.preprocessing import InputSpec
from training.synthesis.ood import generate, holdout_split, load

#: Added to the training seed for the outliers' generator: never the evaluation
#: seed (2024) nor the probe renders' seeds (0-19) for any sane training seed.
SEED_OFFSET = 10_000


def outlier_count(share: float, fit_size: int) -> int:
    """Number of outliers for ``share`` of a fit set of ``fit_size`` inputs."""
    return round(share * fit_size)


def outlier_set(n: int, spec: InputSpec, seed: int) -> np.ndarray:
    """``n`` training outliers as model inputs, through the same preprocessing as uploads.

    Drawn from the training half of :func:`training.synthesis.ood.holdout_split` with the
    generator seeded by ``seed + SEED_OFFSET``.
    """
    training, _ = holdout_split()
    crops = list(generate(n, seed=seed + SEED_OFFSET, vocabulary=training))
    return load(crops, spec)


def with_outliers(x_fit: np.ndarray, labels: np.ndarray, x_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fit inputs with one-hot targets, followed by the outliers with uniform targets."""
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    uniform = np.full((len(x_out), NUM_CLASSES), 1.0 / NUM_CLASSES, dtype=np.float32)
    return np.concatenate([x_fit, x_out.astype(x_fit.dtype)]), np.concatenate([onehot, uniform])


def describe(n: int, seed: int) -> dict:
    """What a run's outliers were, for ``run.json``."""
    training, held_out = holdout_split()
    return {
        "crops": n,
        "seed": seed + SEED_OFFSET,
        "target": "uniform over the classes",
        "symbols": {kind: "".join(symbols) for kind, symbols in training.symbols.items()},
        "fonts": {kind: list(fonts) for kind, fonts in training.fonts.items()},
        "held_out_symbols": {kind: "".join(symbols) for kind, symbols in held_out.symbols.items()},
    }
