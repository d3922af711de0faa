"""Wall-clock cost of an ONNX model in ONNX Runtime, per image.

No TensorFlow here: the benchmark and the model card time the exact file the
service loads, the way the service runs it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path: str | Path, intra_op_threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ms_per_image(path: str | Path, batch: int, seconds: float = 2.0, seed: int = 0) -> float:
    """Median milliseconds per image over repeated runs at ``batch`` (after warm-up)."""
    sess = session(path)
    inp = sess.get_inputs()[0]
    shape = [batch if not isinstance(d, int) else d for d in inp.shape]
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    for _ in range(3):
        sess.run(None, {inp.name: x})
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter()
        sess.run(None, {inp.name: x})
        samples.append(time.perf_counter() - start)
    return float(np.median(samples) * 1000.0 / batch)
