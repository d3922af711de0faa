"""The photo benchmark runs, times both paths on the same files, and writes what it prints.

No timing is asserted (it depends on the machine's load); the ≤ 3× ratio and
the sub-linear growth are figures the benchmark prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_photo_bench_reports_each_size_against_a_full_decode(tmp_path: Path) -> None:
    out = tmp_path / "photos.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.photo_bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [row["megapixels"] for row in result["rows"]] == [1, 4, 12]
    for row, mp in zip(result["rows"], (1, 4, 12), strict=True):
        width, height = row["size"]
        assert abs(width * height / 1e6 - mp) < 0.05 * mp
        assert row["photo_p50_ms"] > 0 and row["decode_p50_ms"] > 0
        assert abs(row["ratio"] - row["photo_p50_ms"] / row["decode_p50_ms"]) < 0.02
        assert f"{mp:>3} MP {width}x{height}" in done.stdout
    assert "photo cost grows as MP^" in done.stdout
