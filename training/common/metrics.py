"""Scores of a classifier's probabilities against true labels.

Kept free of TensorFlow so that the shipped ONNX model can be scored the same
way as the Keras one.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from lpr.labels import LABELS, NUM_CLASSES


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al., 2017)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, macro-F1, ECE, per-class precision/recall/F1 and the confusion matrix."""
    predicted = probabilities.argmax(axis=1)
    classes = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    return {
        "n": len(labels),
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": float(f1.mean()),
        "ece": expected_calibration_error(probabilities, labels),
        "errors": int((predicted != labels).sum()),
        "per_class": {
            LABELS[c]: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c in classes
        },
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
    }
