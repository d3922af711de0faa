"""Leave-one-source-out: the figure that says whether a recipe generalises or memorises.

For every origin of a multi-source recipe's crops (the LPR project, in both its
binarised and photographed forms; the second project), the recipe is trained
again without it and read on it. A model that only learnt one dataset's style
shows it here first, whatever its home test split says.

Each source is read on the set that is held out from the run: ``test/`` for
a source that has one; for a pool source (no test split here), every crop when
the run never saw that source and its validation crops when it did. Runs land
in ``<out>/without-<origin>/`` and are reused when there, so the table can be
rebuilt without retraining.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lpr.labels import LABELS
from lpr.preprocessing import InputSpec
from training.common.outputs import LOSO_REPORT, REPORTS, write_json
from training.data.dataset import Split
from training.data.sources import SOURCES, SourceSplit, concatenated, open_sources
from training.evaluation.source_eval import per_class_accuracy
from training.fitting.recipes import SHIPPED


def origins(sources: tuple[str, ...]) -> list[str]:
    """The distinct origins of ``sources``, in recipe order."""
    return list(dict.fromkeys(SOURCES[s].origin for s in sources))


def read_on(source: SourceSplit, seen: bool) -> tuple[str, Split]:
    """The set a run is scored on for ``source``, and its name: see the module's docstring."""
    if len(source.test):
        return "test", source.test
    if seen:
        return "val", source.val
    return "all", concatenated([source.fit, source.val])


def score_sets(
    predict: Callable[[np.ndarray], np.ndarray],
    sources: list[SourceSplit],
    trained_on: set[str],
    spec: InputSpec,
) -> dict:
    """``{source: {set, n, accuracy, worst_class, ...}}`` of one model.

    A class none of the training sources holds (the second source has no ६) cannot be
    read; ``classes_never_fitted`` names those and ``accuracy_fitted_classes`` leaves them out.
    """
    fitted = {int(c) for s in sources if s.spec.name in trained_on for c in np.unique(s.fit.labels)}
    table = {}
    for source in sources:
        name, split = read_on(source, source.spec.name in trained_on)
        predicted = predict(split.load(spec)).argmax(axis=1)
        right = predicted == split.labels
        per_class = per_class_accuracy(right, split.labels)
        worst = min(per_class, key=per_class.__getitem__)
        known = np.isin(split.labels, sorted(fitted))
        table[source.spec.name] = {
            "set": name,
            "seen": source.spec.name in trained_on,
            "n": len(split),
            "accuracy": round(float(right.mean()), 4),
            "worst_class": worst,
            "worst_class_accuracy": per_class[worst],
            "classes_never_fitted": [LABELS[c] for c in np.unique(split.labels).tolist() if c not in fitted],
            "accuracy_fitted_classes": round(float(right[known].mean()), 4) if known.any() else None,
        }
    return table


def leave_one_source_out(
    home: str | Path,
    out: str | Path,
    arch: str = SHIPPED,
    seed: int = 1234,
    epochs: int | None = None,
    reports: str | Path = REPORTS,
) -> dict:
    """Train ``arch`` once per left-out origin, score every source, write ``reports/loso.json``."""
    import keras  # training-only: TensorFlow is imported when a run is trained or read

    from training.fitting.train import resolve_recipe, train

    recipe = resolve_recipe(arch, epochs)
    if len(origins(recipe.sources)) < 2:
        raise ValueError(f"recipe {arch!r} reads fewer than two sources: nothing to leave out")
    every = open_sources(recipe.sources, recipe.val_fraction, seed, home)
    rows = []
    for origin in origins(recipe.sources):
        kept = tuple(s for s in recipe.sources if SOURCES[s].origin != origin)
        run_dir = Path(out) / f"without-{origin}"
        if not (run_dir / "run.json").exists():
            train(home, run_dir, arch=arch, seed=seed, recipe=dataclasses.replace(recipe, sources=kept))
        model = keras.models.load_model(run_dir / "best.keras")
        rows.append(
            {
                "left_out": origin,
                "trained_on": list(kept),
                "epochs": recipe.epochs,
                "scores": score_sets(
                    lambda x, m=model: m.predict(x, batch_size=256, verbose=0), every, set(kept), recipe.input
                ),
            }
        )
    report = {"recipe": arch, "seed": seed, "rows": rows}
    path = Path(reports) / LOSO_REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)
    return report
