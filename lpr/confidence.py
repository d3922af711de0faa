"""The one formula from the model's probabilities to calibrated ones, and the "unknown" rule.

The shipped graph ends in a softmax, so its logits are only known up to a
constant: ``log(p)``. Dividing them by a temperature ``T`` and applying softmax
again is the same as raising ``p`` to ``1/T`` and renormalising, which is what
:func:`apply_temperature` does. ``T > 1`` softens over-confident answers,
``T < 1`` sharpens under-confident ones (label smoothing makes a model
under-confident). The argmax never changes, so accuracy is untouched.

NumPy only: every answer of the service and of the plate reader goes through
:func:`rank`; fitting ``T`` lives in ``training.evaluation.calibration``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lpr.model import ModelMetadata


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)`` row-wise, computed as ``p**(1/T)`` renormalised.

    Dividing by the row maximum first keeps the power finite for any ``T`` and
    leaves the exact zeros a float32 softmax can produce at zero (``log`` would
    make them ``-inf``).
    """
    if temperature == 1.0:
        return probabilities
    if not temperature > 0.0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scaled = np.power(probabilities / probabilities.max(axis=1, keepdims=True), 1.0 / temperature)
    return scaled / scaled.sum(axis=1, keepdims=True)


def unknown(calibrated: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean per row: the top calibrated probability is below ``threshold``.

    Such an answer is still the model's best guess, but the crop is likely none
    of the twelve symbols (another letter, a blank, a smudge) or unreadable.
    """
    return calibrated.max(axis=1) < threshold


def rank(probabilities: np.ndarray, meta: ModelMetadata) -> list[dict[str, Any]]:
    """Per row: the top class, its calibrated confidence, ``unknown``, and every class most probable first.

    Plain dicts, vectorised: building pydantic objects for 64 x 12 entries cost
    more per batch than the inference. The routes encode these directly, and
    the tests validate real answers against the response models.
    """
    probabilities = apply_temperature(probabilities, meta.temperature)
    flags = unknown(probabilities, meta.threshold).tolist()
    order = np.argsort(-probabilities, axis=1, kind="stable")
    values = np.take_along_axis(probabilities, order, axis=1).astype(float).round(6).tolist()
    labels, devanagari = meta.labels, meta.devanagari
    ranked = []
    for classes, row, flag in zip(order.tolist(), values, flags, strict=True):
        top = classes[0]
        ranked.append(
            {
                "label": labels[top],
                "devanagari": devanagari[top],
                "confidence": row[0],
                "unknown": flag,
                "probabilities": [
                    {"label": labels[k], "devanagari": devanagari[k], "probability": p}
                    for k, p in zip(classes, row, strict=True)
                ],
            }
        )
    return ranked
