"""The HTTP benchmark runs end to end against the real server and counts every error it sees.

The figures themselves are for ``make bench`` on a quiet machine; this only
proves the benchmark works (so ``make bench`` does not rot) and that the
server answers every request of a short wrk run without a single error.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import http_bench

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (Debian package wrk; `make test` installs it)"
)


def test_short_benchmark_run_measures_every_point_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    assert http_bench.main(["--seconds", "1", "--skip-floor", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["model_version"].startswith("lpr-default")
    sections = (("batching", True), ("unbatched", False), ("fastapi_route", False), ("keys", True))
    for section, has_batch in sections:
        runs = list(results[section]["predict"].values())
        if has_batch:
            runs += list(results[section]["batch_64"].values())
        assert [r["connections"] for r in results[section]["predict"].values()] == [1, 8, 32]
        for run in runs:
            assert run["requests"] > 0
            assert sum(run["errors"].values()) == 0, run
        assert results[section]["exit_status"] == 0, "the server must drain and exit 0 on SIGTERM"
        assert results[section]["rss_mib"]["after"] > 0
    assert results["batching"]["env"] == {} and results["unbatched"]["env"] == {"LPR_BATCHING": "false"}
    assert results["fastapi_route"]["env"] == {"LPR_FAST_LANE": "false"}
    assert results["keys"]["env"] == http_bench.KEYS_ENV  # every request carried the key: no 401 counted
    assert results["met"]["no_errors"] is True
    plates = results["batching"]["read_plate"]
    assert set(plates) == {"tight", "photo_1mp"} and all(run["requests"] > 0 for run in plates.values())
    figures = results["figures"]
    assert figures["read_plate_vs_predict_p50_1"] == round(
        plates["tight"]["p50_ms"] / results["batching"]["predict"]["1"]["p50_ms"], 2
    )


def test_repeated_rounds_report_each_points_median_run() -> None:
    def round_(rps: float, errors: int, status: int) -> dict:
        run = {"requests_per_s": rps, "p50_ms": 1000 / rps, "errors": {"status": errors, "read": 0}}
        return {"predict": {"1": run}, "exit_status": status, "rss_mib": {"before": rps, "after": rps}}

    merged = http_bench.median_of([round_(500, 0, 0), round_(900, 1, 0), round_(700, 0, -15)])
    point = merged["predict"]["1"]
    assert point["requests_per_s"] == 700 and point["p50_ms"] == 1000 / 700
    assert point["rounds_requests_per_s"] == [500, 700, 900]
    assert point["errors"] == {"status": 1, "read": 0}, "an error in any round must show"
    assert merged["exit_status"] == -15, "an unclean exit in any round must show"
