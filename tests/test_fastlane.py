"""The fast lane answers ``POST /predict`` exactly as the FastAPI route does, and is really used."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from conftest import make_client
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from test_bad_input import BAD_SINGLE

import service.fastlane
from service.dependencies import EngineDep
from service.fastlane import check_lane
from service.routers import predict as predict_routes


@pytest.fixture(scope="module")
def through_fastapi() -> Iterator[TestClient]:
    with make_client(fast_lane=False) as client:
        yield client


@pytest.fixture
def lane_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts requests the lane served (the FastAPI route calls its own import of ``predict_body``)."""
    calls: list[int] = []
    original = service.fastlane.predict_body

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(service.fastlane, "predict_body", counted)
    return calls


def test_good_crops_get_identical_answers(
    client: TestClient, through_fastapi: TestClient, samples: dict[str, bytes], lane_calls: list[int]
) -> None:
    for name, data in samples.items():
        files = {"file": (f"{name}.png", data, "image/png")}
        fast, slow = client.post("/predict", files=files), through_fastapi.post("/predict", files=files)
        assert fast.status_code == slow.status_code == 200
        assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
        assert fast.content == slow.content
        assert fast.json()["label"] == name
    assert len(lane_calls) == len(samples), "the default app must serve /predict from the fast lane"


@pytest.mark.parametrize(
    ("make_request", "status", "code"), [c[1:] for c in BAD_SINGLE], ids=[c[0] for c in BAD_SINGLE]
)
def test_bad_uploads_get_identical_errors(
    client: TestClient,
    through_fastapi: TestClient,
    samples: dict[str, bytes],
    make_request: Callable,
    status: int,
    code: str,
) -> None:
    request = make_request(samples)
    request["headers"] = {**request.get("headers", {}), "x-request-id": "same-id"}
    fast = client.post("/predict", **request)
    slow = through_fastapi.post("/predict", **request)
    assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())
    assert fast.status_code == status and fast.json()["error"]["code"] == code


def test_other_methods_and_paths_still_go_to_fastapi(client: TestClient, lane_calls: list[int]) -> None:
    assert client.get("/predict").status_code == 405
    assert client.post("/predict/batch", files={"files": ("a.png", b"x")}).status_code == 200
    assert client.get("/model").status_code == 200
    assert lane_calls == []


def test_lane_requests_are_counted_in_metrics(samples: dict[str, bytes]) -> None:
    with make_client() as client:
        for _ in range(3):
            client.post("/predict", files={"file": ("8.png", samples["8"], "image/png")})
        client.post("/predict", files={"file": ("x.txt", b"not an image at all", "text/plain")})
        text = client.get("/metrics").text
    assert 'lpr_http_requests_total{endpoint="/predict",method="POST",status="200"} 3.0' in text
    assert 'lpr_http_requests_total{endpoint="/predict",method="POST",status="415"} 1.0' in text
    assert 'lpr_images_classified_total{label="8"} 3.0' in text


def test_the_lane_refuses_to_stand_in_for_a_route_with_a_dependency_it_would_skip() -> None:
    """An API-key check added as a dependency of POST /predict must not be bypassed by the lane."""
    router = APIRouter()

    async def verify_key() -> None:
        raise AssertionError("never called here")

    @router.post("/predict")
    async def predict(engine: EngineDep, key: None = Depends(verify_key)) -> None:
        return None

    with pytest.raises(RuntimeError, match="fast lane would skip"):
        check_lane(router.routes)
    check_lane(predict_routes.router.routes)  # the shipped route passes
