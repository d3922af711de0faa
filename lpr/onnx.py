"""The one way this project opens and runs an ONNX model.

Training's evaluation, the benchmarks, the plate evaluation and the service all
open models here, so a figure measured offline is measured on the session the
service runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from lpr.labels import NUM_CLASSES


def session(path: str | Path, intra_op_threads: int = 1, inter_op_threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with the service's options.

    One intra-op thread is the service's choice on 2 cores (the second core runs
    request handling or another batch chunk). Idle ONNX Runtime threads would
    otherwise busy-wait for the next call, stealing the core that decoding
    needs, so spinning is off. ``0`` threads lets ONNX Runtime use every core.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_predict(session: ort.InferenceSession, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Probabilities for ``x`` in slices of ``batch``, so a whole split fits in memory."""
    name = session.get_inputs()[0].name
    parts = [session.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES), dtype=np.float32)
