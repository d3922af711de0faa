"""Photo benchmark: ``/read-plate``'s photo path against a plain full decode of the same file.

For each size (1, 4 and 12 MP), one held-out plate photo is scaled to that
size and stored as a JPEG (quality 90), the way a phone hands it over. Two
things are timed in one run, on the same bytes:

* **photo**: :func:`lpr.photo_reader.read_photo` with the shipped detector and
  character finder, in the service's session settings: reduced decode, detection,
  full-size decode only where the plate needs it, reading;
* **decode**: ``Image.open(...).convert("RGB")``, a plain full Pillow decode, the
  floor any reader of the whole photo pays.

It prints each size's p50s and their ratio (the target is ≤ 3×) and the
slope of photo cost against megapixels on a log-log scale (below 1 is
sub-linear), and writes ``bench/results/photos.json``.

    .venv/bin/python -m bench.photo_bench [--seconds 2] [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lpr.char_finder import CharFinder
from lpr.detection import Detector
from lpr.photo_reader import PhotoReading, read_photo
from lpr.readers import FinderReader
from lpr.repository import DEFAULT_REPOSITORY
from service.config import Settings
from training.common.timing import time_calls
from training.data.photos import detector_dataset

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "plate-photos"
RESULTS = ROOT / "bench" / "results"
MEGAPIXELS = (1, 4, 12)
TARGET_RATIO = 3.0


def photo_of(megapixels: float, source: Path) -> bytes:
    """The source photo scaled to ``megapixels`` (its aspect kept), as JPEG bytes."""
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    scale = math.sqrt(megapixels * 1e6 / (rgb.width * rgb.height))
    big = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def held_out_photos(count: int) -> list[Path]:
    """The first ``count`` of the shipped detector's validation photos (never fitted), as its record
    names them."""
    return [PHOTOS / "images" / name for name in detector_dataset(DEFAULT_REPOSITORY)["validation"][:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per row")
    parser.add_argument("--quick", action="store_true", help="0.3 s per row (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS / "photos.json")
    args = parser.parse_args(argv)
    seconds = 0.3 if args.quick else args.seconds

    settings = Settings()
    finder = CharFinder(*settings.finder_files(), intra_op_threads=settings.intra_op_threads)
    plates = FinderReader(finder)
    detector = Detector(*settings.detector_files(), intra_op_threads=settings.intra_op_threads)
    (source,) = held_out_photos(1)
    rows: list[dict[str, Any]] = []
    for mp in MEGAPIXELS:
        data = photo_of(mp, source)

        def photo(data: bytes = data) -> PhotoReading:
            return read_photo(data, detector, plates)

        def decode(data: bytes = data) -> object:
            with Image.open(io.BytesIO(data)) as image:
                return image.convert("RGB")

        found = photo()
        photo_ms = time_calls(photo, 1, seconds).median_ms_per_image
        decode_ms = time_calls(decode, 1, seconds).median_ms_per_image
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
        rows.append(
            {
                "megapixels": mp,
                "size": list(size),
                "bytes": len(data),
                "plates_found": len(found.plates),
                "photo_p50_ms": round(photo_ms, 2),
                "decode_p50_ms": round(decode_ms, 2),
                "ratio": round(photo_ms / decode_ms, 2),
            }
        )
        print(
            f"{mp:>3} MP {size[0]}x{size[1]}: photo p50 {photo_ms:7.1f} ms, "
            f"full decode p50 {decode_ms:7.1f} ms, ratio {photo_ms / decode_ms:.2f}x "
            f"(target <= {TARGET_RATIO:.0f}x), {len(found.plates)} plate(s)",
            flush=True,
        )
    mps = np.log([r["megapixels"] for r in rows])
    costs = np.log([r["photo_p50_ms"] for r in rows])
    slope = float(np.polyfit(mps, costs, 1)[0])
    print(f"photo cost grows as MP^{slope:.2f} (below 1: sub-linear)")
    result = {
        "source": source.name,
        "seconds_per_row": seconds,
        "rows": rows,
        "slope": round(slope, 3),
        "target_ratio": TARGET_RATIO,
        "model": finder.metadata.model_version,
        "detector": detector.metadata.model_version,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
