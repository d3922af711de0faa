"""The one formula from the model's probabilities to calibrated ones, and the "unknown" rule.

The shipped graph ends in a softmax, so its logits are only known up to a
constant: ``log(p)``. Dividing them by a temperature ``T`` and applying softmax
again is the same as raising ``p`` to ``1/T`` and renormalising, which is what
:func:`apply_temperature` does. ``T > 1`` softens over-confident answers,
``T < 1`` sharpens under-confident ones (label smoothing makes a model
under-confident). The argmax never changes, so accuracy is untouched.

NumPy only: the service calls this on every answer (``service.pipeline.rank``),
and fitting ``T`` lives in :mod:`training.calibration`.
"""

from __future__ import annotations

import numpy as np


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
