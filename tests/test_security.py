"""API keys, rate limits and request ids: who may call, how often, and how to follow a request."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import make_client
from fastapi.testclient import TestClient
from test_server import running_server

from service.auth import key_hash
from service.ratelimit import RateLimiter

OPEN_PATHS = ("/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready", "/v2/models/lpr/ready")


def crop(samples: dict[str, bytes], name: str = "ba") -> dict:
    return {"files": {"file": (f"{name}.png", samples[name], "image/png")}}


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    with make_client(api_keys="key-a,key-b") as client:
        yield client


@pytest.mark.parametrize("path", ["/predict", "/read-plate"])
def test_inference_without_a_key_is_a_401_json_with_a_challenge(
    keyed: TestClient, samples: dict[str, bytes], path: str
) -> None:
    response = keyed.post(path, **crop(samples))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_wrong_key_is_refused_and_either_header_works(keyed: TestClient, samples: dict[str, bytes]) -> None:
    wrong = keyed.post("/predict", headers={"X-API-Key": "key-c"}, **crop(samples))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_api_key")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert (
        keyed.post("/predict", headers={"Authorization": "Bearer key-a"}, **crop(samples)).json()["label"]
        == "ba"
    )
    assert keyed.post("/predict", headers={"X-API-Key": "key-b"}, **crop(samples)).json()["label"] == "ba"
    batch = keyed.post(
        "/predict/batch",
        headers={"X-API-Key": "key-b"},
        files=[("files", ("1.png", samples["1"], "image/png"))],
    )
    assert batch.status_code == 200
    assert keyed.get("/model").status_code == 401
    assert keyed.get("/model", headers={"X-API-Key": "key-a"}).status_code == 200


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_probes_and_metrics_stay_open(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_the_page_loads_without_a_key_but_its_calls_need_one(
    keyed: TestClient, samples: dict[str, bytes]
) -> None:
    assert keyed.get("/").status_code == 200 and keyed.get("/static/app.js").status_code == 200
    assert keyed.post("/predict", **crop(samples)).status_code == 401


def test_the_openapi_schema_documents_the_keys(keyed: TestClient) -> None:
    spec = keyed.get("/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert spec["paths"]["/predict"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "401" in spec["paths"]["/predict"]["post"]["responses"]
    assert spec["paths"]["/health"]["get"]["security"] == []


def test_keys_come_from_a_file_too(tmp_path: Path, samples: dict[str, bytes]) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# rotated monthly\nfile-key\n\n")
    with make_client(api_keys_file=keys) as client:
        assert client.post("/predict", headers={"X-API-Key": "file-key"}, **crop(samples)).status_code == 200
        assert (
            client.post("/predict", headers={"X-API-Key": "# rotated monthly"}, **crop(samples)).status_code
            == 401
        )


def test_without_keys_every_route_is_open_and_start_up_warns(
    caplog: pytest.LogCaptureFixture, samples: dict[str, bytes]
) -> None:
    with caplog.at_level(logging.WARNING, logger="service"), make_client() as client:
        assert client.post("/predict", **crop(samples)).status_code == 200
    assert any("LPR_API_KEYS is not set" in record.getMessage() for record in caplog.records)


def test_request_ids_are_echoed_generated_and_in_error_bodies(
    keyed: TestClient, samples: dict[str, bytes]
) -> None:
    given = keyed.get("/health", headers={"X-Request-Id": "camera-7:frame-42"})
    assert given.headers["x-request-id"] == "camera-7:frame-42"
    made = keyed.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    insane = keyed.get("/health", headers={"X-Request-Id": "x" * 300})
    assert insane.headers["x-request-id"] != "x" * 300
    refused = keyed.post("/predict", headers={"X-Request-Id": "r-1"}, **crop(samples))
    assert refused.headers["x-request-id"] == "r-1" and refused.json()["error"]["request_id"] == "r-1"
    unknown = keyed.get("/nowhere", headers={"X-Request-Id": "r-2"})
    assert unknown.status_code == 404 and unknown.json()["error"]["request_id"] == "r-2"


def test_a_burst_over_the_rate_gets_429s_with_retry_after(samples: dict[str, bytes]) -> None:
    with make_client(api_keys="key-a", rate_limit=20) as client:
        statuses, refusals = [], []
        for _ in range(60):
            response = client.post("/predict", headers={"X-API-Key": "key-a"}, **crop(samples))
            statuses.append(response.status_code)
            if response.status_code == 429:
                refusals.append(response)
        assert set(statuses) == {200, 429} and statuses[0] == 200
        first = refusals[0]
        assert first.json()["error"]["code"] == "rate_limited"
        assert int(first.headers["retry-after"]) >= 1
        for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-ratelimit-limit"):
            assert name in first.headers
        assert first.headers["ratelimit-limit"] == "20" and first.headers["ratelimit-remaining"] == "0"
        # Probes are never limited.
        assert all(client.get("/health").status_code == 200 for _ in range(50))


def test_a_batch_counts_as_its_number_of_files(samples: dict[str, bytes]) -> None:
    files = [("files", (f"{i}.png", samples["1"], "image/png")) for i in range(10)]
    with make_client(rate_limit=1, rate_burst=5) as client:
        assert client.post("/predict/batch", files=files).status_code == 200  # let through, then counted
        after = client.post("/predict", **crop(samples))
        assert after.status_code == 429 and int(after.headers["retry-after"]) >= 5


def test_the_limiter_lets_the_rate_through_on_average() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=3, clock=lambda: now[0])
    assert [limiter.take("k").allowed for _ in range(4)] == [True, True, True, False]
    passed = 0
    for _ in range(1000):  # 10 s at 100 attempts a second
        now[0] += 0.01
        passed += limiter.take("k").allowed
    assert 99 <= passed <= 101
    assert limiter.take("other").allowed, "callers have their own buckets"


@pytest.mark.slow
def test_the_issues_scenario_on_a_real_server(tmp_path: Path, samples: dict[str, bytes]) -> None:
    """LPR_API_KEYS=a,b LPR_RATE_LIMIT=20 make serve, with JSON access logs on."""
    log = tmp_path / "server.log"
    settings = {
        "LPR_API_KEYS": "a,b",
        "LPR_RATE_LIMIT": "20",
        "LPR_LOG_FORMAT": "json",
        "LPR_ACCESS_LOG": "true",
    }
    with running_server(log, **settings) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.post("/predict", **crop(samples)).status_code == 401
        ok = client.post(
            "/predict", headers={"Authorization": "Bearer a", "X-Request-Id": "req-1"}, **crop(samples)
        )
        assert ok.status_code == 200 and ok.headers["x-request-id"] == "req-1"
        assert client.post("/predict", headers={"X-API-Key": "b"}, **crop(samples)).status_code == 200
        burst = [client.post("/predict", headers={"X-API-Key": "a"}, **crop(samples)) for _ in range(120)]
        statuses = [r.status_code for r in burst]
        assert 429 in statuses and max(statuses) < 500
        assert all("retry-after" in r.headers for r in burst if r.status_code == 429)
        for path in ("/health", "/ready", "/v2/health/ready"):
            assert client.get(path).status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "service.access"]
    assert len(access) >= 123
    first = next(line for line in access if line["request_id"] == "req-1")
    assert first["status"] == 200 and first["path"] == "/predict" and first["duration_ms"] > 0
    assert first["key"] == key_hash("a") and first["model_version"].startswith("lpr-default")
    text = log.read_text()
    assert '"a"' not in text.replace(f'"{key_hash("a")}"', "") and "Bearer a" not in text
