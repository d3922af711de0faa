"""Model-level benchmark: milliseconds per image of each way to run the recogniser.

Side by side, in one process, on real test crops (``shared/data/lpr/test``)
put through the shared preprocessing with each model's own input spec:

* ONNX Runtime, the shipped model (the newest ``models/lpr-default/<version>/model.onnx``,
  32x32x1), and its int8 variant of the same version as an extra row;
* ONNX Runtime, the reference model (the newest ``models/lpr-reference/<version>/model.onnx``,
  128x128x3);
* Keras ``model.predict`` and a direct eager call ``model(x, training=False)``
  with the reference's ``model.keras``: the way the reference write-up serves it.

The ONNX Runtime rows run through :class:`lpr.model.Model`, the class the
service serves with, so the session options (threads, no spinning, sequential
execution) are exactly the service's, with the thread counts read from the
same ``LPR_*`` settings (:class:`service.config.Settings`): the figure is what
the service gets. TensorFlow keeps its defaults (all cores). Each row is timed at
batch 1 (cycling through the crops) and batch 64 (the service's largest batch)
with :func:`training.common.timing.time_calls`.

TensorFlow lives only in the ``train`` extra; without it the Keras rows are
skipped and said to be. Prints a table and writes ``bench/results/model.json``.

    .venv/bin/python -m bench.model_bench [--seconds 2.5] [--quick] [--no-keras]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from lpr.labels import LABELS
from lpr.model import Model
from lpr.preprocessing import InputSpec
from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, REFERENCE_MODEL, ModelFiles, locate, versions
from service.config import Settings
from training.common.records import keras_checkpoint
from training.common.timing import Timing, time_calls
from training.data.dataset import Split, open_dataset

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "lpr"
RESULTS = ROOT / "bench" / "results"
BATCH = 64  # the service's largest /predict/batch request
TARGET_SPEEDUP = 30.0
#: ``lpr-train quantize``'s int8 variant of the shipped model (``training.quantize.INT8_MODEL``,
#: not imported: that module needs the ``onnx`` package of the train extra).
INT8_MODEL = f"{DEFAULT_MODEL}-int8"

#: The row every speed-up is measured against, and the row the headline compares with it.
BASELINE = "keras-predict-reference"
HEADLINE = "ort-shipped"


@dataclass(frozen=True)
class Engine:
    """One way of running one model: ``predict`` maps a preprocessed batch to class probabilities."""

    key: str
    title: str
    model: str
    spec: InputSpec
    predict: Callable[[np.ndarray], np.ndarray]


def spec_of(metadata_path: Path) -> InputSpec:
    """The model's own input spec, from its metadata (the one place that records it)."""
    return InputSpec.from_dict(json.loads(metadata_path.read_text(encoding="utf-8"))["preprocessing"])


def interleaved(split: Split) -> Split:
    """The split reordered round-robin over classes, so any prefix (a batch of 64) mixes all classes."""
    rank = np.zeros(len(split), dtype=np.int64)
    for cls in np.unique(split.labels):
        members = np.flatnonzero(split.labels == cls)
        rank[members] = np.arange(len(members))
    return split.subset(np.lexsort((split.labels, rank)))


def cpu_model() -> str:
    """The CPU's marketing name, so numbers from different machines are not confused."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ort_engines(
    settings: Settings, include_int8: bool, repository: Path = DEFAULT_REPOSITORY
) -> tuple[list[Engine], dict[str, Any]]:
    """ONNX Runtime engines built exactly as the service builds its one session."""
    shipped = locate(repository, DEFAULT_MODEL)
    models = [("ort-shipped", "ONNX Runtime, shipped (float32)", "shipped", shipped)]
    if include_int8 and shipped.version in versions(repository, INT8_MODEL):
        int8 = locate(repository, INT8_MODEL, shipped.version)
        models.append(("ort-shipped-int8", "ONNX Runtime, shipped (int8)", "shipped-int8", int8))
    models.append(
        ("ort-reference", "ONNX Runtime, reference", "reference", locate(repository, REFERENCE_MODEL))
    )
    engines: list[Engine] = []
    loaded = None
    for key, title, model, files in models:
        loaded = Model(
            files.onnx,
            files.metadata,
            intra_op_threads=settings.intra_op_threads,
            inter_op_threads=settings.inter_op_threads,
        )
        engines.append(Engine(key, title, model, loaded.metadata.spec, loaded.run))
    assert loaded is not None
    return engines, session_settings(loaded.session)


def session_settings(session: ort.InferenceSession) -> dict[str, Any]:
    """What the session was really built with (read back, not restated, so it cannot drift)."""
    options = session.get_session_options()

    def entry(key: str) -> str | None:
        try:
            return options.get_session_config_entry(key)
        except Exception:  # onnxruntime raises a bare RuntimeError-like type for unset keys
            return None

    return {
        "session": "lpr.model.Model, as the service builds it",
        "threads_from": "LPR_INTRA_OP_THREADS, LPR_INTER_OP_THREADS (service Settings; 0 = ORT chooses)",
        "intra_op_threads": options.intra_op_num_threads,
        "inter_op_threads": options.inter_op_num_threads,
        "execution_mode": str(options.execution_mode),
        "graph_optimization_level": str(options.graph_optimization_level),
        "intra_op_allow_spinning": entry("session.intra_op.allow_spinning"),
        "providers": session.get_providers(),
    }


def tensorflow_available() -> bool:
    """Whether the Keras rows can run, found without paying TensorFlow's import time."""
    return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras"))


def keras_engines(repository: Path = DEFAULT_REPOSITORY) -> tuple[list[Engine], dict[str, Any]]:
    """Keras engines for the reference model; TensorFlow is imported here only, at its defaults."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter logs; no effect on speed
    started = time.perf_counter()
    import keras
    import tensorflow as tf

    reference: ModelFiles = locate(repository, REFERENCE_MODEL)
    model = keras.models.load_model(keras_checkpoint(reference), compile=False)
    spec = spec_of(reference.metadata)

    def predict(x: np.ndarray) -> np.ndarray:
        # batch_size=len(x): one predict step per call, as a server would do it
        # (the default of 32 would split a batch of 64 into two steps).
        return model.predict(x, batch_size=len(x), verbose=0)

    def direct(x: np.ndarray) -> np.ndarray:
        return np.asarray(model(x, training=False))

    engines = [
        Engine(BASELINE, "Keras model.predict, reference", "reference", spec, predict),
        Engine("keras-call-reference", "Keras model(x), reference", "reference", spec, direct),
    ]
    threads = {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "note": "0 = TensorFlow's default: all cores; left as is",
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "import_and_load_seconds": round(time.perf_counter() - started, 2),
    }
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    return engines, {"versions": versions, "threads": threads}


def time_engine(
    engine: Engine, x: np.ndarray, batch: int, seconds: float, min_calls: int, warm_up: int
) -> Timing:
    """Batch 1 cycles through the crops (real, varied payloads); larger batches reuse the first ``batch``."""
    if batch == 1:
        singles = [x[i : i + 1] for i in range(len(x))]
        position = iter(range(sys.maxsize))

        def call() -> object:
            return engine.predict(singles[next(position) % len(singles)])

    else:
        chunk = np.ascontiguousarray(x[:batch])

        def call() -> object:
            return engine.predict(chunk)

    return time_calls(call, batch, seconds=seconds, min_calls=min_calls, warm_up=warm_up)


def top1(engine: Engine, x: np.ndarray, chunk: int = 64) -> np.ndarray:
    return np.concatenate([engine.predict(x[i : i + chunk]).argmax(axis=1) for i in range(0, len(x), chunk)])


def sanity(engines: list[Engine], answers: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, Any]:
    """Top-1 accuracy of every row, and disagreements with the ONNX float32 row of the same weights.

    Rows running the same weights (reference in ONNX Runtime and in Keras) must
    agree exactly, or the comparison is between different things; int8 may
    differ on a crop or two; the shipped and reference models are different
    networks, so their agreement is only reported.
    """
    same_weights = {"shipped": "ort-shipped", "shipped-int8": "ort-shipped", "reference": "ort-reference"}
    rows = {}
    for engine in engines:
        ref_key = same_weights[engine.model]
        rows[engine.key] = {
            "accuracy": float((answers[engine.key] == truth).mean()),
            "compared_with": ref_key,
            "top1_mismatches": int((answers[engine.key] != answers[ref_key]).sum()),
        }
    identical = all(r["top1_mismatches"] == 0 for k, r in rows.items() if k != "ort-shipped-int8")
    return {
        "crops": len(truth),
        "rows": rows,
        "same_weights_agree": identical,
        "shipped_vs_reference_agreement": float((answers["ort-shipped"] == answers["ort-reference"]).mean()),
    }


def speedup(rows: list[dict[str, Any]], key: str, batch: int, against: str) -> float | None:
    found = {(r["key"], r["batch"]): r["median_ms_per_image"] for r in rows}
    if (key, batch) not in found or (against, batch) not in found:
        return None
    return found[(against, batch)] / found[(key, batch)]


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| engine | batch | calls | median ms/image | p90 ms/image | images/s | "
        "× vs Keras predict | × vs ORT reference |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def times(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.1f}×"

    for r in rows:
        lines.append(
            f"| {r['title']} | {r['batch']} | {r['calls']} | {r['median_ms_per_image']:.3f} | "
            f"{r['p90_ms_per_image']:.3f} | {r['images_per_s']:,.0f} | "
            f"{times(r['speedup_vs_keras_predict'])} | {times(r['speedup_vs_ort_reference'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.5, help="timing budget per row and batch size")
    parser.add_argument("--min-calls", type=int, default=5, help="fewest timed calls per row, however slow")
    parser.add_argument("--warm-up", type=int, default=3, help="untimed calls before each timing")
    parser.add_argument("--batch", type=int, default=BATCH, help="the large batch size timed besides 1")
    parser.add_argument("--crops", type=int, default=0, help="test crops used (0 = the whole test split)")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras rows even if TF is installed")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 row")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (tests): 16 crops, batches 1 and 8, 0.2 s per row, 1 warm-up, 2 calls minimum",
    )
    parser.add_argument("--data", type=Path, default=DATA, help="dataset root with a test/ split")
    parser.add_argument(
        "--models", type=Path, default=DEFAULT_REPOSITORY, help="model repository (default: models/)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "model.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.min_calls, args.warm_up, args.batch, args.crops = 0.2, 2, 1, 8, args.crops or 16
    batches = (1, args.batch)

    settings = Settings()
    engines, ort_threads = ort_engines(settings, include_int8=not args.no_int8, repository=args.models)
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "tensorflow": None,
        "keras": None,
    }
    tf_threads: dict[str, Any] | None = None
    keras_skipped: str | None = None
    if args.no_keras:
        keras_skipped = "--no-keras given"
    elif not tensorflow_available():
        keras_skipped = "TensorFlow is not installed (it is in the 'train' extra: pip install -e '.[train]')"
    else:
        keras_rows, info = keras_engines(args.models)
        engines += keras_rows
        versions.update(info["versions"])
        tf_threads = info["threads"]
    if keras_skipped:
        print(f"Keras rows skipped: {keras_skipped}", flush=True)

    split = interleaved(open_dataset(args.data).test)
    if args.crops:
        split = split.subset(np.arange(min(args.crops, len(split))))
    if len(split) < args.batch:
        raise SystemExit(
            f"need at least {args.batch} test crops under {args.data / 'test'}, found {len(split)}"
        )
    payloads = {spec: split.load(spec) for spec in {e.spec for e in engines}}

    rows: list[dict[str, Any]] = []
    answers: dict[str, np.ndarray] = {}
    for engine in engines:
        x = payloads[engine.spec]
        started = time.perf_counter()
        answers[engine.key] = top1(engine, x, args.batch)
        # The answer pass above already ran every batch shape; a slow row (Keras at
        # batch 64: seconds a call) needs no three more untimed calls.
        per_call = (time.perf_counter() - started) / -(-len(x) // args.batch)
        for batch in batches:
            warm_up = args.warm_up if batch == 1 or per_call < 1.0 else min(args.warm_up, 1)
            timing = time_engine(engine, x, batch, args.seconds, args.min_calls, warm_up)
            rows.append(
                {
                    "key": engine.key,
                    "title": engine.title,
                    "model": engine.model,
                    "input": list(engine.spec.shape),
                    "batch": batch,
                    "calls": len(timing.seconds),
                    "median_ms_per_image": timing.median_ms_per_image,
                    "p90_ms_per_image": timing.p90_ms_per_image,
                    "images_per_s": timing.images_per_s,
                }
            )
            print(
                f"  {engine.title:<34} batch {batch:>2}: {timing.median_ms_per_image:9.3f} ms/image "
                f"({len(timing.seconds)} calls)",
                flush=True,
            )
    for r in rows:
        r["speedup_vs_keras_predict"] = speedup(rows, r["key"], r["batch"], BASELINE)
        r["speedup_vs_ort_reference"] = speedup(rows, r["key"], r["batch"], "ort-reference")

    checks = sanity(engines, answers, split.labels)
    headline = speedup(rows, HEADLINE, 1, BASELINE)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.model_bench", *(argv or sys.argv[1:])]),
        "quick": args.quick,
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "versions": versions,
        "threads": {"onnxruntime": ort_threads, "tensorflow": tf_threads},
        "payload": {
            "source": str(args.data / "test"),
            "crops": len(split),
            "classes": list(LABELS),
            "batch_1": "cycles through all crops, one per call",
            f"batch_{args.batch}": f"the first {args.batch} crops (round-robin over classes), every call",
            "batches": list(batches),
            "timing": {
                "seconds_per_row": args.seconds,
                "min_calls": args.min_calls,
                "warm_up_calls": args.warm_up,
                "warm_up_note": "1 call where a batch call took over 1 s in the answer pass, which ran first",
            },
        },
        "keras_skipped": keras_skipped,
        "rows": rows,
        "headline": {
            "what": "shipped model in ONNX Runtime vs Keras model.predict with the reference model, batch 1",
            "speedup": headline,
            "target": TARGET_SPEEDUP,
            "met": None if headline is None else headline >= TARGET_SPEEDUP,
        },
        "sanity": checks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print()
    print(
        f"{cpu_model()}, {os.cpu_count()} cores; onnxruntime {ort.__version__} "
        f"(intra-op {ort_threads['intra_op_threads']}, inter-op {ort_threads['inter_op_threads']}, "
        f"as the service); tensorflow {versions['tensorflow'] or 'absent'} (default threads); "
        f"{len(split)} test crops"
    )
    print(table(rows))
    print()
    agree = "yes" if checks["same_weights_agree"] else "NO"
    accuracies = ", ".join(f"{k} {v['accuracy'] * 100:.1f} %" for k, v in checks["rows"].items())
    print(f"Top-1 on {checks['crops']} crops: {accuracies}")
    int8 = checks["rows"].get("ort-shipped-int8")
    print(
        f"Same weights, same top-1 answers: {agree}"
        + (f" (int8 vs float32: {int8['top1_mismatches']} differ)" if int8 else "")
    )
    figure = "n/a (Keras rows skipped)" if headline is None else f"{headline:,.0f}×"
    print(f"shipped ORT vs Keras model.predict at batch 1: {figure} (target ≥ {TARGET_SPEEDUP:.0f}×)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
