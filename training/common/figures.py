"""The figures of the reference write-up, as PNG files, plus the error gallery.

Devanagari needs a font that has it; Matplotlib's bundled DejaVu does not, so
titles use the ASCII class ids (``ba``, ``pa``), which read the same to anyone.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from lpr.labels import LABELS


def _show(ax: plt.Axes, image: np.ndarray, title: str, color: str = "black") -> None:
    ax.imshow(
        image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255 if image.dtype == np.uint8 else 1
    )
    ax.set_title(title, fontsize=9, color=color)
    ax.axis("off")


def samples_per_class(paths: Sequence[Path], labels: np.ndarray, out: Path, per_class: int = 6) -> Path:
    """A grid of raw crops, one row per class, as the dataset stores them."""
    fig, axes = plt.subplots(len(LABELS), per_class, figsize=(per_class * 1.1, len(LABELS) * 1.15))
    for row, label in enumerate(LABELS):
        members = [p for p, y in zip(paths, labels, strict=True) if y == row][:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(members):
                _show(ax, np.asarray(Image.open(members[col]).convert("L")), label if col == 0 else "")
    fig.suptitle("Samples per class")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def training_curves(history_csv: Path, out: Path) -> Path:
    """Accuracy and loss, train vs validation, per epoch."""
    with open(history_csv) as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in ((acc, "accuracy"), (loss, "loss")):
        ax.plot(epochs, [float(r[key]) for r in rows], label=f"train {key}")
        ax.plot(epochs, [float(r[f"val_{key}"]) for r in rows], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key.capitalize())
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def confusion(matrix: Sequence[Sequence[int]], out: Path, title: str = "Confusion matrix (test)") -> Path:
    data = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(LABELS)), LABELS)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            if data[i, j]:
                color = "white" if data[i, j] > data.max() / 2 else "black"
                ax.text(j, i, str(data[i, j]), ha="center", va="center", color=color, fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def prediction_grid(
    images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, out: Path, title: str, columns: int = 8
) -> Path:
    """Model inputs titled ``true/pred``; wrong ones in red."""
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.35), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < count:
            wrong = labels[k] != predicted[k]
            _show(
                ax,
                images[k][:, :, 0],
                f"{LABELS[labels[k]]}/{LABELS[predicted[k]]}",
                "red" if wrong else "black",
            )
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def error_gallery(paths: Sequence[Path], labels: np.ndarray, predicted: np.ndarray, out: Path) -> Path:
    """Every misclassified test crop as stored on disk, titled ``true/pred``."""
    wrong = np.flatnonzero(labels != predicted)
    columns = max(1, min(8, len(wrong)))
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.5), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(wrong):
            i = wrong[k]
            crop = np.asarray(Image.open(paths[i]).convert("L"))
            _show(ax, crop, f"{LABELS[labels[i]]}/{LABELS[predicted[i]]}\n{Path(paths[i]).name[:14]}", "red")
    fig.suptitle(f"All {len(wrong)} test errors (true/pred)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def preprocessing_proof(images: Sequence[str | Path], out: Path, size: int = 64) -> Path:
    """Each image as uploaded (top) and as the model sees it (bottom)."""
    from lpr.preprocessing import InputSpec, load_file

    spec = InputSpec(size=size, channels=1, margin=max(1, size // 16))
    fig, axes = plt.subplots(2, len(images), figsize=(len(images) * 1.6, 3.4), squeeze=False)
    for k, path in enumerate(images):
        _show(axes[0, k], np.asarray(Image.open(path).convert("RGB")), Path(path).name)
        _show(axes[1, k], load_file(str(path), spec)[:, :, 0], "model input")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], out: Path, bins: int = 8) -> Path:
    """Reliability diagram, one curve per set of crops: mean confidence against accuracy per bin.

    ``curves`` maps a set's name to its calibrated probabilities and true labels. Bins
    hold equal numbers of crops (adaptive binning): with most answers near 1.0, equal-width
    bins would leave a single point per source. A calibrated model follows the diagonal on
    every source, not only on the one it was fitted on.
    """
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, (q, labels) in curves.items():
        confidence = q.max(axis=1)
        right = q.argmax(axis=1) == labels
        groups = np.array_split(np.argsort(confidence), bins)
        ax.plot(
            [confidence[g].mean() for g in groups],
            [right[g].mean() for g in groups],
            marker="o",
            label=f"{name} ({len(labels)} crops)",
        )
    ax.set_xlabel(f"confidence after temperature (mean of {bins} equal-count bins)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0.3, 1.01)
    ax.set_ylim(0.3, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Reliability per source")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
