"""Dynamic batching: concurrent images share one inference, and nobody's answer changes for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from conftest import make_client
from fastapi.testclient import TestClient

from lpr.model import Model
from lpr.preprocessing import preprocess_bytes
from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, locate
from service.batching import BatcherClosed, MicroBatcher
from service.runner import Runner


class Recorded:
    """The shipped float32 model behind a runner, recording the size of every inference call."""

    def __init__(self) -> None:
        self.model = Model(locate(DEFAULT_REPOSITORY, DEFAULT_MODEL).onnx)
        self.metadata = self.model.metadata
        self.runner = Runner("characters", self.metadata, self.classify)
        self.sizes: list[int] = []

    def classify(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(len(batch))
        return self.model.run(batch)

    def batcher(self, max_batch: int, max_wait: float) -> MicroBatcher:
        return MicroBatcher(
            self.runner, self.model.empty_batch(max_batch), max_batch=max_batch, max_wait=max_wait
        )


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    recorded = Recorded()
    yield recorded
    recorded.runner.close()


@pytest.fixture(scope="module")
def images(recorded: Recorded, test_crops: list[tuple[str, bytes]]) -> np.ndarray:
    spec = recorded.metadata.spec
    return np.stack([preprocess_bytes(data, spec) for _, data in test_crops[:24]])


async def _request(batcher: MicroBatcher, image: np.ndarray) -> np.ndarray:
    """One request as the route makes it: announced, then classified."""
    with batcher.arrival() as arrival:
        return await arrival.classify(image)


async def _classify_together(batcher: MicroBatcher, images: np.ndarray) -> list[np.ndarray]:
    """Announce every request first, as the service does while it reads their bodies, then submit."""

    async def one(image: np.ndarray, arrival) -> np.ndarray:
        return await arrival.classify(image)

    arrivals = [batcher.arrival() for _ in images]
    handles = [arrival.__enter__() for arrival in arrivals]
    try:
        return await asyncio.gather(*(one(image, h) for image, h in zip(images, handles, strict=True)))
    finally:
        for arrival in arrivals:
            arrival.__exit__(None, None, None)


def test_concurrent_requests_share_one_inference_with_unchanged_answers(
    recorded: Recorded, images: np.ndarray
) -> None:
    sizes = recorded.sizes
    alone = recorded.model.run(images.copy())
    batcher = recorded.batcher(32, 1.0)
    try:
        sizes.clear()
        rows = asyncio.run(_classify_together(batcher, images[:8]))
    finally:
        batcher.close()
    assert sizes == [8], "eight requests announced together must run as one batch"
    np.testing.assert_allclose(np.stack(rows), alone[:8], atol=1e-6)


def test_batches_never_exceed_the_limit(recorded: Recorded, images: np.ndarray) -> None:
    sizes = recorded.sizes
    batcher = recorded.batcher(5, 1.0)
    try:
        sizes.clear()
        rows = asyncio.run(_classify_together(batcher, images[:12]))
    finally:
        batcher.close()
    assert max(sizes) <= 5 and sum(sizes) == 12
    np.testing.assert_allclose(np.stack(rows), recorded.model.run(images[:12].copy()), atol=1e-6)


def test_batching_off_runs_every_image_alone(recorded: Recorded, images: np.ndarray) -> None:
    sizes = recorded.sizes
    batcher = recorded.batcher(1, 1.0)
    try:
        sizes.clear()
        rows = asyncio.run(_classify_together(batcher, images[:6]))
    finally:
        batcher.close()
    assert sizes == [1] * 6
    np.testing.assert_allclose(np.stack(rows), recorded.model.run(images[:6].copy()), atol=1e-6)


def test_a_lone_request_does_not_wait_for_company(recorded: Recorded, images: np.ndarray) -> None:
    """The wait only applies while other requests are arriving; one client never pays it."""
    batcher = recorded.batcher(32, 2.0)

    async def lone() -> float:
        started = time.perf_counter()
        with batcher.arrival() as arrival:
            await arrival.classify(images[0])
        return time.perf_counter() - started

    try:
        elapsed = asyncio.run(lone())
    finally:
        batcher.close()
    assert elapsed < 1.0, f"a lone request took {elapsed:.3f} s: it waited for the 2 s batch window"


def test_a_lone_request_runs_at_once_without_the_hand_off(recorded: Recorded, images: np.ndarray) -> None:
    """Nothing queued, nothing running, nobody else arriving: the image runs on the caller's loop."""
    sizes = recorded.sizes
    batcher = recorded.batcher(32, 1.0)

    try:
        sizes.clear()
        row = asyncio.run(_request(batcher, images[3]))
        assert batcher.arriving == recorded.runner.active == 0, "the arrival must end exactly once"
    finally:
        batcher.close()
    assert batcher.alone_runs == 1 and sizes == [1]
    np.testing.assert_allclose(row, recorded.model.run(images[3:4].copy())[0], atol=1e-6)


def test_a_request_with_company_is_batched_not_run_alone(recorded: Recorded, images: np.ndarray) -> None:
    batcher = recorded.batcher(32, 0.0)

    async def with_company() -> np.ndarray:
        with batcher.arrival(), batcher.arrival() as mine:
            return await mine.classify(images[0])

    try:
        asyncio.run(with_company())
        assert batcher.arriving == recorded.runner.active == 0
    finally:
        batcher.close()
    assert batcher.alone_runs == 0


def test_requests_that_start_together_are_batched_not_run_alone(
    recorded: Recorded, images: np.ndarray
) -> None:
    """Under load a request's task starts only when the loop gets to it; the first must not run alone."""
    sizes = recorded.sizes
    batcher = recorded.batcher(32, 0.0)

    async def together() -> list[np.ndarray]:
        return await asyncio.gather(*(_request(batcher, image) for image in images[:4]))

    try:
        sizes.clear()
        rows = asyncio.run(together())
    finally:
        batcher.close()
    assert batcher.alone_runs == 0 and sum(sizes) == 4 and max(sizes) > 1
    np.testing.assert_allclose(np.stack(rows), recorded.model.run(images[:4].copy()), atol=1e-6)


def test_another_caller_of_the_runner_keeps_a_request_from_running_alone(
    recorded: Recorded, images: np.ndarray
) -> None:
    """A batch or a plate using the model counts as company; the request goes to the worker."""
    batcher = recorded.batcher(32, 0.0)

    try:
        with recorded.runner.caller():
            row = asyncio.run(_request(batcher, images[0]))
        assert recorded.runner.active == 0
        asyncio.run(_request(batcher, images[0]))  # the other caller gone: alone again
    finally:
        batcher.close()
    assert batcher.alone_runs == 1
    np.testing.assert_allclose(row, recorded.model.run(images[:1].copy())[0], atol=1e-6)


def test_a_failed_inference_fails_only_its_batch(recorded: Recorded, images: np.ndarray) -> None:
    batcher = recorded.batcher(8, 0.0)

    async def run() -> np.ndarray:
        with pytest.raises(ValueError):
            await batcher.submit(np.zeros((3, 3), dtype=np.float32))  # wrong shape
        return await batcher.submit(images[0])

    try:
        row = asyncio.run(run())
    finally:
        batcher.close()
    np.testing.assert_allclose(row, recorded.model.run(images[:1].copy())[0], atol=1e-6)


def test_closing_finishes_queued_work_and_refuses_new(recorded: Recorded, images: np.ndarray) -> None:
    batcher = recorded.batcher(4, 0.0)

    async def run() -> list[np.ndarray]:
        futures = [batcher.submit(image) for image in images[:10]]
        batcher.close()
        with pytest.raises(BatcherClosed):
            batcher.submit(images[0])
        return await asyncio.gather(*futures)

    rows = asyncio.run(run())
    assert len(rows) == 10


@pytest.mark.parametrize("batching", [True, False])
def test_the_api_gives_the_same_answers_with_batching_on_or_off(
    batching: bool, client: TestClient, samples: dict[str, bytes]
) -> None:
    with make_client(batching=batching) as other:
        info = other.get("/model").json()["runtime"]["batching"]
        assert info["enabled"] is batching
        for name, data in samples.items():
            files = {"file": (f"{name}.png", data, "image/png")}
            mine = other.post("/predict", files=files).json()
            reference = client.post("/predict", files=files).json()
            assert mine["label"] == reference["label"] == name
            assert mine["probabilities"] == reference["probabilities"]


async def _held_scrape(app, release: asyncio.Event) -> None:
    """``GET /metrics`` through the whole stack, its answer held until ``release`` is set."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/metrics",
        "raw_path": b"/metrics",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        await release.wait()

    await app(scope, receive, send)


def test_a_metrics_scrape_in_flight_does_not_change_how_a_lone_predict_runs(
    samples: dict[str, bytes],
) -> None:
    """The batcher asks the model's runner who else is using the model, not the HTTP middleware."""
    with make_client() as client:
        app, engine = client.app, client.app.state.engine

        async def scenario() -> tuple[float, int, httpx.Response]:
            release = asyncio.Event()
            scrape = asyncio.create_task(_held_scrape(app, release))
            for _ in range(100):  # until the scrape is inside the stack, waiting to send
                await asyncio.sleep(0)
            in_flight = app.state.metrics.in_flight._value.get()
            before = engine.batcher.alone_runs
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                files = {"file": ("8.png", samples["8"], "image/png")}
                response = await http.post("/predict", files=files)
            alone = engine.batcher.alone_runs - before
            release.set()
            await scrape
            return in_flight, alone, response

        in_flight, alone, response = client.portal.call(scenario)
    assert in_flight == 1, "the scrape must be in flight while /predict runs"
    assert response.status_code == 200 and response.json()["label"] == "8"
    assert alone == 1, "a lone /predict must run at once beside a scrape, as it does without one"
