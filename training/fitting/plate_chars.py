"""Real plate characters for the crop classifier: hand-painted digits, बा and प as the reader cuts them.

The sources' crops are cut by hand or printed; the characters ``/read-plate``
names are cut by the character finder from plates painted by hand, worn and
seen at an angle, and that is where the classifier misreads (a flat-topped ८
read ९, a १ read २). Each transcribed plate of a **fitted** bike is boxed by the
served finder and named by its text (:func:`training.fitting.letter_data.real_symbols`:
a plate whose characters do not come out in the text's rows is left out), and
divided by its text as the letter model's are (:func:`~training.fitting.letter_data.letter_part`,
:data:`SPLIT_SEED`): the ``fit`` quarters are fitted, the ``val`` quarter is not
(the finder's classifier plate bar is fitted there), and no held-out bike is read.
A letter outside the twelve (को and the rest) is fitted as "no class", beside
the sources' real च.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lpr.char_finder import Found
from lpr.labels import LABELS
from lpr.preprocessing import InputSpec, preprocess_into
from training.data.plate_texts import RealPlate
from training.fitting.letter_data import LetterCrop, letter_part, real_symbols

#: The letter model's division of the fitted plates, so both models fit the same plates.
SPLIT_SEED = 1


@dataclass(frozen=True)
class PlateChars:
    """The fitted plates' characters, and where they come from (recorded with the run)."""

    crops: tuple[LetterCrop, ...]
    provenance: dict[str, Any]

    def arrays(self, spec: InputSpec, copies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``copies`` of each crop of the twelve as inputs and labels, and the other letters' inputs
        (fitted towards no class); the training pipeline varies each copy as it goes."""
        named = [c for c in self.crops if c.label in LABELS]
        other = [c for c in self.crops if c.label not in LABELS]

        def inputs(crops: list[LetterCrop]) -> np.ndarray:
            out = np.empty((len(crops), *spec.shape), np.float32)
            return preprocess_into([c.image for c in crops], spec, out)

        x = np.repeat(inputs(named), copies, axis=0)
        y = np.repeat(np.array([LABELS.index(c.label) for c in named], dtype=np.int64), copies)
        return x, y, inputs(other)


def plate_chars(
    plates: Sequence[RealPlate],
    crop: Callable[[RealPlate], bytes],
    find: Callable[[Image.Image], list[Found]],
    provenance: dict[str, Any],
) -> PlateChars:
    """Every readable character of the fitted plates in the fitting quarters."""
    fitted = [p for p in plates if letter_part(p, SPLIT_SEED) == "fit"]
    crops = tuple(real_symbols(fitted, crop, find, SPLIT_SEED, lambda symbol: True)["fit"])
    counts: dict[str, int] = {}
    for c in crops:
        counts[c.label] = counts.get(c.label, 0) + 1
    return PlateChars(
        crops,
        {
            **provenance,
            "split_seed": SPLIT_SEED,
            "plates": sorted({c.group for c in crops}),
            "counts": dict(sorted(counts.items())),
        },
    )
