"""``models/MODEL_CARD.md``: what the shipped model is, how good, how cheap, and where it fails."""

from __future__ import annotations

import json
import os
from pathlib import Path

from training.export import onnx_predict
from training.labels import DEVANAGARI, LABELS
from training.preprocessing import InputSpec, load_file
from training.timing import ms_per_image
from training.timing import session as onnx_session

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"


def _row(meta: dict, timing: tuple[float, float]) -> list[str]:
    tm = meta["test_metrics"]
    return [
        f"`{meta['architecture']}`",
        f"{tm['accuracy'] * 100:.2f} % ({tm['errors']}/{tm['n']} wrong)",
        f"{tm['macro_f1']:.4f}",
        f"{tm['ece']:.4f}",
        f"{meta['parameters']:,}",
        f"{meta['flops'] / 1e6:,.1f}",
        f"{timing[0]:.3f}",
        f"{timing[1]:.3f}",
        f"{meta['training']['train_seconds'] / 60:.1f} min ({meta['training']['epochs_run']} epochs)",
    ]


def _sample_predictions(onnx_path: Path, spec: InputSpec) -> list[str]:
    import numpy as np

    files = sorted(SAMPLES.glob("*.png"))
    if not files:
        return []
    probs = onnx_predict(onnx_session(onnx_path), np.stack([load_file(str(f), spec) for f in files]))
    lines = ["| sample | true | predicted | confidence |", "|---|---|---|---|"]
    for f, p in zip(files, probs, strict=True):
        best = LABELS[int(p.argmax())]
        lines.append(f"| `{f.name}` | {DEVANAGARI[f.stem]} | {DEVANAGARI[best]} (`{best}`) | {p.max():.4f} |")
    return lines


def write_card(default_run: str | Path, models_dir: str | Path) -> Path:
    """Compare the shipped model with ``models/reference/`` and time both here."""
    models_dir = Path(models_dir)
    shipped = json.loads((models_dir / "lpr-default.json").read_text())
    reference = json.loads((models_dir / "reference" / "lpr-reference.json").read_text())
    shipped_onnx = models_dir / shipped["onnx"]["file"]
    reference_onnx = models_dir / "reference" / reference["onnx"]["file"]
    timings = {
        "shipped": (ms_per_image(shipped_onnx, 1), ms_per_image(shipped_onnx, 64)),
        "reference": (ms_per_image(reference_onnx, 1), ms_per_image(reference_onnx, 64)),
    }
    header = [
        "model",
        "test accuracy",
        "macro-F1",
        "ECE",
        "parameters",
        "MFLOPs / image",
        "ms / image, batch 1",
        "ms / image, batch 64",
        "training time",
    ]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table.append("| " + " | ".join(_row(reference, timings["reference"])) + " |")
    table.append("| " + " | ".join(_row(shipped, timings["shipped"])) + " |")

    metrics = json.loads((Path(default_run) / "metrics.json").read_text())
    per_class = ["| class | precision | recall | F1 | test crops |", "|---|---|---|---|---|"]
    for label in LABELS:
        c = metrics["per_class"][label]
        per_class.append(
            f"| {DEVANAGARI[label]} (`{label}`) | {c['precision']:.3f} | {c['recall']:.3f} | "
            f"{c['f1']:.3f} | {c['support']} |"
        )

    spec = InputSpec.from_dict(shipped["preprocessing"])
    recipe = shipped["training"]["recipe"]
    dataset = shipped["dataset"]
    flops_ratio = reference["flops"] / shipped["flops"]
    cpu = f"{os.cpu_count()} CPU cores"
    text = f"""# Model card: `{shipped["name"]}` {shipped["version"]}

Classifies one cropped character of a Nepali (Bagmati zone) private-motorbike
licence plate into twelve classes: ० १ २ ३ ४ ५ ६ ७ ८ ९ बा प.

- **File**: `{shipped["onnx"]["file"]}` (ONNX opset {shipped["onnx"]["opset"]}, input `image`
  float32 NHWC `{shipped["input"]["shape"]}` in [0, 1], output `probabilities` `[N, 12]`),
  SHA-256 `{shipped["onnx"]["sha256"]}`.
- **Metadata**: `lpr-default.json` (labels, preprocessing, recipe, seed, dataset hash, test metrics).
- **Preprocessing**: `training/preprocessing.py`, shared by training and the service: darkest channel,
  Otsu, glyph made white, tight crop, stretched to {spec.size}x{spec.size} with a {spec.margin}px margin.
- **Intended use**: research and prototyping on cropped plate characters. Not for enforcement decisions.
  The dataset's licence allows research use only.

## Reference vs shipped

Test split: `shared/data/lpr/test`, {shipped["test_metrics"]["n"]} crops never used for training or tuning.
Timings: ONNX Runtime {shipped["onnx"]["onnxruntime"]}, CPU, {cpu} of this machine, median of repeated runs
(`lpr-train card`). The shipped model needs 1/{flops_ratio:.0f} of the reference's FLOPs.

{chr(10).join(table)}

The reference is the published design reproduced layer for layer (128x128x3, six conv blocks,
SGD, 20 epochs, batch 32, 70/30 split, shear/zoom 0.2, rotation 10°); the write-up reports ~86 %
validation accuracy. Both models see the same preprocessing.

## Shipped model per class (test)

{chr(10).join(per_class)}

## The four colour samples (real uploads, white paint on red)

{chr(10).join(_sample_predictions(shipped_onnx, spec))}

![preprocessing of the samples](figures/samples_preprocessed.png)

## Every test error

Each misclassified test crop as stored in the dataset, titled `true/pred`; judge for yourself
how many a person could read.

![test errors](figures/test_errors.png)

## Figures

- [samples per class](figures/samples_per_class.png)
- [training curves](figures/training_curves.png)
- [confusion matrix](figures/confusion_matrix.png)
- [grid of test predictions](figures/test_predictions.png)

## Reproduce

Recipe: `{recipe["arch"]}`, {recipe["epochs"]} epochs max (best epoch {shipped["training"]["best_epoch"]} of
{shipped["training"]["epochs_run"]} run), batch {recipe["batch_size"]}, {recipe["optimizer"]} lr
{recipe["learning_rate"]}, validation {recipe["val_fraction"]:.0%} of `train/` (stratified, seed
{shipped["seed"]}), augmentation {recipe["augmentation"]}.
Dataset SHA-256 `{dataset["sha256"]}`
({dataset["sizes"]["train"]} train / {dataset["sizes"]["val"]} validation / {dataset["sizes"]["test"]} test).
Versions: {shipped["training"]["versions"]}.

```
lpr-train train --data ../shared/data/lpr --arch default --out runs/default --seed {shipped["seed"]}
lpr-train train --data ../shared/data/lpr --arch reference --out runs/reference --seed {reference["seed"]}
lpr-train ship --run runs/default
lpr-train ship --run runs/reference --models models/reference --name lpr-reference --keras
lpr-train card --default runs/default
```

## Data and citation

LPR dataset (Pant, Gyawali, Acharya, SKIMA 2015), research use only; binarised copy from
nripesh-k/Automated-Parking-System. See `README.md` for the citation.
"""
    out = models_dir / "MODEL_CARD.md"
    out.write_text(text)
    _update_readme(models_dir.parent / "README.md", "\n".join(table))
    return out


README_MARKERS = ("<!-- model-card-table -->", "<!-- /model-card-table -->")


def _update_readme(readme: Path, table: str) -> None:
    """Keep the README's copy of the headline table identical to the card's."""
    if not readme.is_file():
        return
    text = readme.read_text()
    begin, end = README_MARKERS
    if begin not in text:
        return
    head, _, tail = text.partition(begin)
    _, _, tail = tail.partition(end)
    readme.write_text(f"{head}{begin}\n{table}\n{end}{tail}")
