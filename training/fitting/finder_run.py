"""One training run of the character finder, by stage, into its run folder.

1. **Painted plates** (:mod:`training.synthesis.painted`) from the served
   classifier's fitted crops of every source: a training set and a
   validation set, each named by its seed.
2. **Stage one**: the network learns boxes and names on painted plates alone.
3. **Real plates**: the fitted part of the transcribed photos (split by bike)
   is boxed by the stage-one network and named by its text
   (:func:`training.fitting.finder_data.real_pairs`).
4. **Stage two**: training goes on over painted and real plates together, at
   a lower rate, so the real paint (hand-painted ९, १ and ८, the को of most
   plates) is learnt without forgetting the grammar's other letters.

The run folder gets ``model.keras`` and ``record.json`` (seed, sizes, the real
plates used, the history, the sources' hashes); the release stage exports it
(:mod:`training.release.char_finder`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image

from lpr.char_finder import BOX_HEAD, FINDER_MODEL, FinderSpec, Found, decode, letterbox
from training.data.plate_texts import RealPlate
from training.fitting import char_finder
from training.fitting.finder_data import fitted_crops, painted_pairs, real_pairs

#: Painted plates per stage-one epoch, and the validation set's size.
PAINTED = 12_000
PAINTED_VALIDATION = 500
#: Epochs of each stage; stage two's rate; how many times each real plate is seen per epoch.
EPOCHS = (6, 3)
STAGE_TWO_RATE = 5e-4
REAL_REPEATS = 20


def keras_finder(model: keras.Model, spec: FinderSpec) -> Callable[[Image.Image], list[Found]]:
    """A plate image to its characters through a Keras model (training's own view of the finder)."""

    def find(image: Image.Image) -> list[Found]:
        boxed = letterbox(image, spec)
        return decode(np.asarray(model(boxed.pixels[None], training=False))[0], spec, boxed)

    return find


def train_finder(
    out: str | Path,
    classifier_record: dict[str, Any],
    fit_plates: Sequence[RealPlate],
    crop: Callable[[RealPlate], bytes],
    seed: int = 1,
    painted: int = PAINTED,
    epochs: tuple[int, int] = EPOCHS,
    data_home: str | Path | None = None,
) -> dict[str, Any]:
    """Both stages; returns the record written to ``<out>/record.json``."""
    from training.common.outputs import write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = FinderSpec()
    keras.utils.set_random_seed(seed)
    started = time.time()
    crops, cha = fitted_crops(classifier_record, data_home)
    train = painted_pairs(crops, cha, painted, seed, spec)
    validation = painted_pairs(crops, cha, PAINTED_VALIDATION, seed + 1, spec)
    model = char_finder.build(spec)
    first = char_finder.fit(model, train, validation, epochs[0], seed)
    real_x, real_y, used = real_pairs(fit_plates, crop, keras_finder(model, spec), spec, REAL_REPEATS, seed)
    both = (np.concatenate([train[0], real_x]), np.concatenate([train[1], real_y]))
    second = char_finder.fit(model, both, validation, epochs[1], seed + 1, learning_rate=STAGE_TWO_RATE)
    model.save(out / "model.keras")
    record = {
        "name": FINDER_MODEL,
        "architecture": "centernet-fpn-s4-named",
        "input": spec.to_dict(),
        "output": {"name": "head", "channels": [*BOX_HEAD, *spec.labels]},
        "seed": seed,
        "parameters": int(model.count_params()),
        "training": {
            "classifier": f"{classifier_record['name']} {classifier_record['version']}",
            "painted": {"fit": painted, "validation": PAINTED_VALIDATION, "seeds": [seed, seed + 1]},
            "real_plates": {
                "fit_offered": len(fit_plates),
                "labelled": len(used),
                "repeats": REAL_REPEATS,
                "files": used,
            },
            "epochs": list(epochs),
            "margins": {
                "near": char_finder.NEAR_MARGIN,
                "far": char_finder.FAR_MARGIN,
                "far_share": char_finder.FAR,
            },
            "history": {"stage_one": first, "stage_two": second},
            "seconds": round(time.time() - started, 1),
        },
        "dataset": classifier_record["dataset"],
    }
    write_json(out / "record.json", record)
    return record
