"""The twelve symbols of a Bagmati private-motorbike plate.

This is the single source of truth for the class order: the model's output
index ``i`` means ``LABELS[i]``, in training, in the exported ONNX model, in the
metadata and in the service.
"""

from __future__ import annotations

#: ASCII class ids, in the model's output order (also the dataset's folder names).
LABELS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "ba", "pa")

#: Devanagari rendering of each class id.
DEVANAGARI: dict[str, str] = {
    "0": "०",
    "1": "१",
    "2": "२",
    "3": "३",
    "4": "४",
    "5": "५",
    "6": "६",
    "7": "७",
    "8": "८",
    "9": "९",
    "ba": "बा",
    "pa": "प",
}

NUM_CLASSES: int = len(LABELS)

#: The digit classes, ०-९, in output order.
DIGITS: tuple[str, ...] = tuple(label for label in LABELS if label.isdigit())
