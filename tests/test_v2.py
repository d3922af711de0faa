"""The Open Inference Protocol V2 routes, driven by a real V2 client (tritonclient) and by plain JSON."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from conftest import make_client
from fastapi.testclient import TestClient
from test_server import running_server
from tritonclient.utils import InferenceServerException

from lpr.labels import LABELS

KEY = {"Authorization": "Bearer v2-key"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m service`` with keys on: the V2 routes honour them like every other route."""
    with running_server(tmp_path_factory.mktemp("v2") / "server.log", LPR_API_KEYS="v2-key") as base:
        yield base.removeprefix("http://")


def image_input(images: list[bytes], binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=binary)
    return tensor


@pytest.mark.slow
def test_a_real_v2_client_sees_a_live_ready_model(server: str) -> None:
    client = triton.InferenceServerClient(server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("lpr")
    metadata = client.get_model_metadata("lpr", headers=KEY)
    assert metadata["name"] == "lpr" and [i["name"] for i in metadata["inputs"]] == ["image"]
    assert {o["name"] for o in metadata["outputs"]} == {"label", "confidence", "probabilities"}
    assert client.get_server_metadata(headers=KEY)["extensions"] == ["binary_tensor_data"]


@pytest.mark.slow
def test_a_real_v2_client_classifies_a_batch_and_gets_its_id_back(
    server: str, samples: dict[str, bytes]
) -> None:
    client = triton.InferenceServerClient(server)
    names = ["1", "8", "ba", "pa"]
    result = client.infer(
        "lpr",
        [image_input([samples[n] for n in names])],
        outputs=[triton.InferRequestedOutput(name) for name in ("label", "confidence", "probabilities")],
        request_id="plate-cam-3",
        headers=KEY,
    )
    labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")]
    assert labels == names
    assert result.get_response()["id"] == "plate-cam-3"
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (4, len(LABELS))
    assert [LABELS[k] for k in probabilities.argmax(axis=1)] == names
    np.testing.assert_allclose(result.as_numpy("confidence"), probabilities.max(axis=1), atol=1e-6)


@pytest.mark.slow
def test_a_v2_client_without_a_key_or_with_a_bad_image_gets_the_protocols_error(
    server: str, samples: dict[str, bytes]
) -> None:
    client = triton.InferenceServerClient(server)
    with pytest.raises(InferenceServerException, match="API key"):
        client.infer("lpr", [image_input([samples["ba"]])])
    with pytest.raises(InferenceServerException, match="element 1"):
        client.infer("lpr", [image_input([samples["ba"], b"not an image"])], headers=KEY)
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.infer("nope", [image_input([samples["ba"]])], headers=KEY)


@pytest.fixture(scope="module")
def app() -> Iterator[TestClient]:
    with make_client() as client:
        yield client


def test_plain_json_with_base64_elements_is_answered_like_predict(
    app: TestClient, samples: dict[str, bytes]
) -> None:
    body = {
        "id": "42",
        "inputs": [
            {
                "name": "image",
                "shape": [2],
                "datatype": "BYTES",
                "data": [base64.b64encode(samples[n]).decode() for n in ("ba", "pa")],
            }
        ],
        "outputs": [{"name": "label"}, {"name": "confidence"}],
    }
    answer = app.post("/v2/models/lpr/infer", json=body).json()
    assert answer["id"] == "42" and answer["model_name"] == "lpr"
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert list(outputs) == ["label", "confidence"]
    assert outputs["label"]["data"] == ["ba", "pa"] and outputs["label"]["shape"] == [2]
    single = app.post("/predict", files={"file": ("ba.png", samples["ba"], "image/png")}).json()
    assert outputs["confidence"]["data"][0] == single["confidence"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"inputs": []}, "exactly one input"),
        ({"inputs": [{"name": "image", "shape": [1], "datatype": "FP32", "data": [1.0]}]}, "BYTES"),
        ({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["%%%"]}]}, "base64"),
        ({"inputs": [{"name": "image", "shape": [3], "datatype": "BYTES", "data": ["QQ=="]}]}, "shape"),
        ({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["QQ=="]}]}, "element 0"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_infer_requests_get_a_4xx_in_the_protocols_shape(
    app: TestClient, body: object, fragment: str
) -> None:
    response = app.post("/v2/models/lpr/infer", json=body, headers={"X-Request-Id": "bad-1"})
    assert 400 <= response.status_code < 500
    error = response.json()
    assert isinstance(error["error"], str) and fragment in error["error"], error
    assert error["request_id"] == "bad-1"


def test_unknown_models_and_versions_are_404(app: TestClient) -> None:
    assert app.get("/v2/models/other").status_code == 404
    assert app.get("/v2/models/lpr/versions/0.0.1").status_code == 404
    version = app.get("/v2/models/lpr").json()["versions"][0]
    assert app.get(f"/v2/models/lpr/versions/{version}").status_code == 200
    assert app.get(f"/v2/models/lpr/versions/{version}/ready").json() == {"name": "lpr", "ready": True}


def test_too_many_images_are_refused(samples: dict[str, bytes]) -> None:
    data = [base64.b64encode(samples["1"]).decode()] * 3
    body = {"inputs": [{"name": "image", "shape": [3], "datatype": "BYTES", "data": data}]}
    with make_client(max_batch_files=2) as client:
        response = client.post("/v2/models/lpr/infer", json=body)
    assert response.status_code == 413 and "at most 2" in response.json()["error"]
