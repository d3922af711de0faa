"""Wall-clock cost of an ONNX model in ONNX Runtime, per image.

No TensorFlow here: the benchmark and the model card time the exact file the
service loads, the way the service runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lpr.onnx import session


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of each timed call of one batch size."""

    batch: int
    seconds: tuple[float, ...]

    @property
    def median_ms_per_image(self) -> float:
        return float(np.median(self.seconds) * 1000.0 / self.batch)

    @property
    def p90_ms_per_image(self) -> float:
        return float(np.percentile(self.seconds, 90) * 1000.0 / self.batch)

    @property
    def images_per_s(self) -> float:
        return float(self.batch / np.median(self.seconds))


def time_calls(
    call: Callable[[], object], batch: int, seconds: float = 2.0, min_calls: int = 5, warm_up: int = 3
) -> Timing:
    """Time ``call`` (which processes ``batch`` images) repeatedly, after ``warm_up`` untimed calls.

    Bounded by ``seconds`` rather than a call count, so a 0.3 ms model and a
    300 ms one both finish in about the same time; ``min_calls`` keeps the
    median meaningful for the slow ones. The median, not the mean, because a
    shared machine adds rare long stalls that say nothing about the model.
    """
    for _ in range(warm_up):
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < min_calls:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return Timing(batch, tuple(samples))


def ms_per_image(path: str | Path, batch: int, seconds: float = 2.0, seed: int = 0) -> float:
    """Median ms per image over repeated runs at ``batch`` (after warm-up), as the service runs it."""
    sess = session(path)
    inp = sess.get_inputs()[0]
    shape = [batch if not isinstance(d, int) else d for d in inp.shape]
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return time_calls(lambda: sess.run(None, {inp.name: x}), batch, seconds).median_ms_per_image
