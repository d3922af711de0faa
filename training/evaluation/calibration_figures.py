"""The calibration's figures: out-of-class crops with their calibrated answers, and the reliability
diagram of every source (``lpr-train calibrate --figure``)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lpr.confidence import apply_temperature, unknown
from lpr.labels import LABELS
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from training.evaluation.source_eval import EvaluatedSet
from training.synthesis.ood import KINDS, OODCrop


def ood_figure(
    onnx_path: Path, block: dict, x_ood: np.ndarray, crops: Sequence[OODCrop], out: Path, per_kind: int = 10
) -> Path:
    """Some out-of-class crops as uploaded, titled with the calibrated answer; red = not flagged."""
    import matplotlib  # training-only, and slow to import: only when a figure is asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    q = apply_temperature(onnx_predict(onnx_session(onnx_path), x_ood), block["temperature"])
    flagged = unknown(q, block["threshold"])
    kinds = [k for k in KINDS if any(c.kind == k for c in crops)]
    fig, axes = plt.subplots(len(kinds), per_kind, figsize=(per_kind * 1.1, len(kinds) * 1.35))
    for row, kind in enumerate(kinds):
        members = [i for i, c in enumerate(crops) if c.kind == kind][:per_kind]
        for col, ax in enumerate(axes[row]):
            ax.axis("off")
            if col >= len(members):
                continue
            i = members[col]
            ax.imshow(Image.open(io.BytesIO(crops[i].data)).convert("RGB"))
            verdict = "unknown" if flagged[i] else "answered"
            ax.set_title(
                f"{LABELS[int(q[i].argmax())]} {q[i].max():.2f}\n{verdict}",
                fontsize=8,
                color="green" if flagged[i] else "red",
            )
        axes[row][0].text(-0.15, 0.5, kind, transform=axes[row][0].transAxes, ha="right", va="center")
    fig.suptitle(
        f"Out-of-class crops: calibrated answer (T={block['temperature']:.2f}); "
        f"green = flagged unknown (p < {block['threshold']:.2f}), red = answered as a class",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def reliability_figure(onnx_path: Path, block: dict, sources: Sequence[EvaluatedSet], out: Path) -> Path:
    """The reliability diagram of every source's in-class sets, calibrated as the service answers."""
    from training.common.figures import reliability  # matplotlib: only when a figure is asked for

    session = onnx_session(onnx_path)
    curves = {
        f"{s.source} {s.split}": (
            apply_temperature(onnx_predict(session, s.x), block["temperature"]),
            s.labels,
        )
        for s in sources
        if s.labels is not None
    }
    return reliability(curves, out)
