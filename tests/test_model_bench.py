"""The model-level benchmark runs, writes the rows it promises, and compares like with like.

Timings are only checked where the gap is large and structural (the shipped
32x32 network against the 128x128 reference, ~30x fewer FLOPs); the 30x
headline over Keras is printed by the benchmark, not asserted, because it
depends on the machine's load.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: ``python -m bench.model_bench`` as a user runs it, optionally in a process where
#: TensorFlow counts as absent (the serving install), without uninstalling it.
WITHOUT_TF = (
    "import sys, bench.model_bench as bench; bench.tensorflow_available = lambda: False; "
    "sys.exit(bench.main(sys.argv[1:]))"
)


def _bench(out: Path, *args: str, hide_tensorflow: bool = False) -> tuple[dict, str]:
    entry = ["-c", WITHOUT_TF] if hide_tensorflow else ["-m", "bench.model_bench"]
    done = subprocess.run(
        [sys.executable, *entry, "--quick", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout


def _rows(result: dict) -> dict[tuple[str, int], dict]:
    return {(row["key"], row["batch"]): row for row in result["rows"]}


def test_without_tensorflow_the_onnx_rows_run_and_keras_is_skipped(tmp_path: Path) -> None:
    result, printed = _bench(tmp_path / "model.json", hide_tensorflow=True)

    assert "Keras rows skipped: TensorFlow is not installed" in printed
    assert "shipped ORT vs Keras model.predict at batch 1: n/a" in printed
    rows = _rows(result)
    batches = result["payload"]["batches"]
    assert set(rows) == {
        (key, b) for key in ("ort-shipped", "ort-shipped-int8", "ort-reference") for b in batches
    }
    assert result["keras_skipped"] and result["headline"]["speedup"] is None
    # The figure must be what the service gets: its own thread settings, recorded.
    assert result["threads"]["onnxruntime"]["intra_op_threads"] == 1
    for batch in batches:
        shipped, reference = rows[("ort-shipped", batch)], rows[("ort-reference", batch)]
        assert shipped["median_ms_per_image"] < reference["median_ms_per_image"]
        assert shipped["speedup_vs_ort_reference"] > 1
        assert shipped["images_per_s"] == pytest.approx(1000 / shipped["median_ms_per_image"])
    # Real crops: both models mostly right on them, int8 answering like float32.
    assert result["sanity"]["rows"]["ort-shipped"]["accuracy"] >= 0.8
    assert result["sanity"]["rows"]["ort-reference"]["accuracy"] >= 0.8
    assert result["sanity"]["same_weights_agree"]


@pytest.mark.slow
def test_keras_rows_time_the_same_reference_weights(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow (the 'train' extra) is not installed")

    result, printed = _bench(tmp_path / "model.json", "--no-int8")

    assert "shipped ORT vs Keras model.predict at batch 1:" in printed
    rows = _rows(result)
    assert result["keras_skipped"] is None
    assert result["versions"]["tensorflow"] and result["versions"]["keras"]
    for batch in result["payload"]["batches"]:
        assert ("keras-predict-reference", batch) in rows and ("keras-call-reference", batch) in rows
    # Keras and ONNX Runtime run the same reference weights, so they give the same answers.
    assert result["sanity"]["rows"]["keras-predict-reference"]["top1_mismatches"] == 0
    assert result["sanity"]["rows"]["keras-call-reference"]["top1_mismatches"] == 0
    assert result["headline"]["speedup"] > 1
