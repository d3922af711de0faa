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
    shutil.which("wrk") is None, reason="wrk is not installed (Debian package wrk; .ci/run installs it)"
)


def test_short_benchmark_run_measures_every_point_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    assert http_bench.main(["--seconds", "1", "--skip-floor", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["model_version"].startswith("lpr-default")
    for section, has_batch in (("batching", True), ("unbatched", False), ("fastapi_route", False)):
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
    assert results["met"]["no_errors"] is True
