"""The API contract clients code against, exercised in-process with TestClient."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE_CLASSES, TEST_CROPS, encode, make_client
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from PIL import Image

import service.main
from lpr.labels import DEVANAGARI, LABELS
from lpr.model import ModelLoadError
from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, locate
from service.config import Settings
from service.dependencies import EngineDep
from service.main import create_app
from service.multipart import form_body
from training.common.records import load_record
from training.synthesis.plates import DEFAULT_SEED, generate_plates


def predict(client: TestClient, data: bytes, filename: str = "crop.png") -> dict:
    response = client.post("/predict", files={"file": (filename, data, "application/octet-stream")})
    assert response.status_code == 200, response.text
    return response.json()


def probabilities_by_label(answer: dict) -> dict[str, float]:
    return {p["label"]: p["probability"] for p in answer["probabilities"]}


@pytest.mark.parametrize("true_class", SAMPLE_CLASSES)
def test_predict_reads_each_colour_sample(
    client: TestClient, samples: dict[str, bytes], true_class: str
) -> None:
    """A user uploading a real colour crop gets the right class, in ASCII and in Devanagari."""
    answer = predict(client, samples[true_class], f"{true_class}.png")
    assert answer["label"] == true_class
    assert answer["devanagari"] == DEVANAGARI[true_class]
    assert answer["filename"] == f"{true_class}.png"


def test_prediction_ranks_all_twelve_classes(client: TestClient, samples: dict[str, bytes]) -> None:
    """Clients can show alternatives: every class once, most probable first, summing to one."""
    answer = predict(client, samples["ba"])
    ranked = answer["probabilities"]
    assert sorted(p["label"] for p in ranked) == sorted(LABELS)
    assert all(p["devanagari"] == DEVANAGARI[p["label"]] for p in ranked)
    values = [p["probability"] for p in ranked]
    assert values == sorted(values, reverse=True)
    assert sum(values) == pytest.approx(1.0, abs=1e-4)
    assert answer["confidence"] == values[0]
    assert (answer["label"], answer["devanagari"]) == (ranked[0]["label"], ranked[0]["devanagari"])


def test_prediction_names_the_model_version(client: TestClient, settings: Settings) -> None:
    """Every answer can be traced to the exact model that produced it."""
    metadata = json.loads(settings.model_files()[1].read_text())
    answer = client.post("/predict", files={"file": ("x.png", _blank_glyph(), "image/png")}).json()
    assert answer["model_version"] == f"{metadata['name']} {metadata['version']}"


def _blank_glyph() -> bytes:
    image = Image.new("L", (40, 60), 0)
    image.paste(255, (15, 10, 25, 50))
    return encode(image, "PNG")


@pytest.mark.parametrize(
    ("fmt", "options", "mode"),
    [
        ("BMP", {}, "RGB"),
        ("TIFF", {}, "RGB"),
        ("WEBP", {"lossless": True}, "RGB"),
        ("PNG", {}, "RGBA"),
        ("PNG", {}, "P"),
    ],
)
def test_lossless_formats_and_modes_give_the_same_answer(
    client: TestClient, samples: dict[str, bytes], fmt: str, options: dict, mode: str
) -> None:
    """The same pixels in any lossless container or mode are read identically."""
    original = Image.open(io.BytesIO(samples["8"])).convert("RGB")
    converted = original.convert(mode)
    if mode == "P":
        converted = original.quantize(256, dither=Image.Dither.NONE)
        original = converted.convert("RGB")
    reference = probabilities_by_label(predict(client, encode(original, "PNG")))
    answer = predict(client, encode(converted, fmt, **options), f"8.{fmt.lower()}")
    assert answer["label"] == "8"
    assert probabilities_by_label(answer) == pytest.approx(reference, abs=1e-5)


@pytest.mark.parametrize("true_class", SAMPLE_CLASSES)
def test_lossy_and_grayscale_uploads_are_read(
    client: TestClient, samples: dict[str, bytes], true_class: str
) -> None:
    """Phones send JPEG, often large; a grayscale scan works too."""
    image = Image.open(io.BytesIO(samples[true_class])).convert("RGB")
    big = image.resize((image.width * 6, image.height * 6), Image.Resampling.BICUBIC)
    for data in (encode(image, "JPEG", quality=90), encode(big, "JPEG", quality=85), encode(image, "PNG")):
        assert predict(client, data)["label"] == true_class
    assert predict(client, encode(image.convert("L"), "PNG"))["label"] == true_class


def test_gif_uses_the_first_frame(client: TestClient, samples: dict[str, bytes]) -> None:
    """An animated GIF is read from its first frame, whatever follows."""
    first = Image.open(io.BytesIO(samples["ba"])).convert("RGB")
    second = Image.open(io.BytesIO(samples["pa"])).convert("RGB").resize(first.size)
    gif = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert Image.open(io.BytesIO(gif)).n_frames == 2
    assert predict(client, gif, "ba.gif")["label"] == "ba"
    reversed_gif = encode(second, "GIF", save_all=True, append_images=[first], duration=100, loop=0)
    assert predict(client, reversed_gif, "pa.gif")["label"] == "pa"


def test_exif_orientation_is_honoured(client: TestClient, samples: dict[str, bytes]) -> None:
    """A phone photo stored sideways with an EXIF rotation tag is read upright."""
    upright = Image.open(io.BytesIO(samples["8"])).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    tagged = predict(client, encode(stored, "PNG", exif=exif), "8-rotated.png")
    reference = predict(client, encode(upright, "PNG"))
    untagged = predict(client, encode(stored, "PNG"))
    assert tagged["label"] == "8"
    assert probabilities_by_label(tagged) == pytest.approx(probabilities_by_label(reference), abs=1e-5)
    assert probabilities_by_label(untagged) != pytest.approx(probabilities_by_label(reference), abs=1e-5)


def test_batch_answers_every_file_in_order(client: TestClient, test_crops: list[tuple[str, bytes]]) -> None:
    """64 dataset crops in one request: one result each, in upload order, nearly all right."""
    files = [
        ("files", (f"{i:02d}-{label}.jpg", data, "image/jpeg")) for i, (label, data) in enumerate(test_crops)
    ]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["classified"], body["failed"]) == (64, 64, 0)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(64))
    assert [r["filename"] for r in results] == [name for _, (name, _, _) in files]
    assert all(r["status"] == "ok" and len(r["probabilities"]) == 12 for r in results)
    correct = sum(r["label"] == label for r, (label, _) in zip(results, test_crops, strict=True))
    assert correct / 64 >= 0.9


def test_batch_reports_bad_files_and_classifies_the_rest(
    client: TestClient, samples: dict[str, bytes], bomb: bytes
) -> None:
    """One unusable crop does not cost the user the answers for the others."""
    names = ["1.png", "notes.txt", "8.png", "empty.png", "ba.png", "bomb.png", "pa.png", "half.png"]
    payloads = [samples["1"], b"plate 1 ba 2345", samples["8"], b"", samples["ba"], bomb, samples["pa"]]
    payloads.append(samples["pa"][: len(samples["pa"]) // 2])
    files = [("files", (name, data, "image/png")) for name, data in zip(names, payloads, strict=True)]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["classified"], body["failed"]) == (8, 4, 4)
    results = body["results"]
    assert [r["filename"] for r in results] == names
    assert [r["status"] for r in results] == ["ok", "error"] * 4
    assert [r["label"] for r in results[0::2]] == ["1", "8", "ba", "pa"]
    assert [r["error"]["code"] for r in results[1::2]] == [
        "not_an_image",
        "empty",
        "too_many_pixels",
        "corrupt",
    ]
    assert all(r["error"]["message"] for r in results[1::2])


def test_batch_and_single_give_identical_probabilities(client: TestClient, samples: dict[str, bytes]) -> None:
    """Batching is an optimisation only: it never changes an answer."""
    files = [("files", (f"{name}.png", data, "image/png")) for name, data in samples.items()]
    batch = client.post("/predict/batch", files=files).json()["results"]
    for result, (name, data) in zip(batch, samples.items(), strict=True):
        single = predict(client, data, f"{name}.png")
        assert probabilities_by_label(result) == pytest.approx(probabilities_by_label(single), abs=2e-6)


def test_health_ready_and_model(client: TestClient, settings: Settings) -> None:
    """Orchestrators probe /health and /ready; operators read /model to know what is deployed."""
    assert client.get("/health").json() == {"status": "ok"}
    metadata = json.loads(settings.model_files()[1].read_text())
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": f"{metadata['name']} {metadata['version']}"}

    info = client.get("/model").json()
    assert info["labels"] == list(LABELS)
    assert info["devanagari"] == [DEVANAGARI[label] for label in LABELS]
    size, channels = metadata["preprocessing"]["size"], metadata["preprocessing"]["channels"]
    assert info["input"]["shape"][1:] == [size, size, channels]
    assert info["version"] == metadata["version"]
    assert set(info["test_metrics"]) >= {"accuracy", "macro_f1"}
    shipped = hashlib.sha256(settings.model_files()[0].read_bytes()).hexdigest()
    assert info["runtime"]["sha256"] == shipped == info["onnx"]["sha256"]
    assert info["runtime"]["intra_op_threads"] == settings.intra_op_threads


def test_model_lists_one_runner_per_model_and_what_went_through_each(
    settings: Settings, samples: dict[str, bytes]
) -> None:
    """Every inference of every route goes through its model's runner, and GET /model shows them."""
    plate = next(iter(generate_plates(TEST_CROPS, count=1, seed=DEFAULT_SEED)))
    buffer = io.BytesIO()
    plate.image.save(buffer, "PNG")
    characters = json.loads(settings.model_files()[1].read_text())
    detector = json.loads(settings.detector_files()[1].read_text())
    finder = json.loads(settings.finder_files()[1].read_text())
    letters = json.loads(settings.letters_files()[1].read_text())
    with make_client() as fresh:

        def runners() -> dict[str, dict]:
            return {r["role"]: r for r in fresh.get("/model").json()["runtime"]["runners"]}

        start = runners()
        assert [(r["role"], r["name"], r["version"]) for r in start.values()] == [
            ("characters", characters["name"], characters["version"]),
            ("plates", detector["name"], detector["version"]),
            ("plate-characters", finder["name"], finder["version"]),
            ("plate-letters", letters["name"], letters["version"]),
        ]
        assert all(r["calls"] == r["images"] == r["active"] == 0 for r in start.values()), "warm-up counts"
        predict(fresh, samples["8"])
        files = [("files", (f"{n}.png", d, "image/png")) for n, d in samples.items()]
        assert fresh.post("/predict/batch", files=files).status_code == 200
        crops = runners()
        assert crops["characters"]["images"] == 5 and crops["characters"]["calls"] >= 2
        assert (
            crops["plates"]["calls"]
            == crops["plate-characters"]["calls"]
            == crops["plate-letters"]["calls"]
            == 0
        )
        read = fresh.post("/read-plate", files={"file": ("p.png", buffer.getvalue(), "image/png")})
        assert read.status_code == 200 and read.json()["text"] == plate.text
        after = runners()
        metrics = fresh.get("/metrics").text
    assert after["plates"]["calls"] == after["plates"]["images"] == 1
    # A tight crop is read in one finder call: the plate as it is and upside down, one batch.
    assert (after["plate-characters"]["calls"], after["plate-characters"]["images"]) == (1, 2)
    if finder["naming"] == "classifier":  # then every character found is named in one more call
        assert after["characters"]["calls"] == crops["characters"]["calls"] + 1
    # And the letter slots of every way up read, in one call of the letter model.
    assert after["plate-letters"]["calls"] == 1 and after["plate-letters"]["images"] >= 2
    assert all(r["active"] == 0 for r in after.values())
    # The inference metrics are the classifier runner's own timing: the same images.
    assert f"lpr_model_inference_batch_size_sum {float(after['characters']['images'])}" in metrics


def test_metrics_count_requests_images_and_inference(settings: Settings, samples: dict[str, bytes]) -> None:
    """Prometheus sees traffic by endpoint and status, images classified, and inference time."""
    with make_client() as fresh:
        fresh.post("/predict", files={"file": ("ba.png", samples["ba"], "image/png")})
        fresh.post("/predict", files={"file": ("x.txt", b"text", "text/plain")})
        files = [("files", (f"{n}.png", d, "image/png")) for n, d in samples.items()]
        fresh.post("/predict/batch", files=files)
        fresh.get("/no-such-page")
        response = fresh.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'lpr_http_requests_total{endpoint="/predict",method="POST",status="200"} 1.0' in text
    assert 'lpr_http_requests_total{endpoint="/predict",method="POST",status="415"} 1.0' in text
    assert 'lpr_http_requests_total{endpoint="/predict/batch",method="POST",status="200"} 1.0' in text
    assert 'lpr_http_requests_total{endpoint="unmatched",method="GET",status="404"} 1.0' in text
    assert (
        'lpr_http_request_duration_seconds_count{endpoint="/predict",method="POST",status="200"} 1.0' in text
    )
    assert 'lpr_images_classified_total{label="ba"} 2.0' in text
    assert 'lpr_images_rejected_total{code="not_an_image"} 1.0' in text
    # Every image went through ONNX Runtime once: 1 single crop + 4 in the batch (in one or more calls).
    assert "lpr_model_inference_batch_size_sum 5.0" in text
    assert "lpr_ready 1.0" in text
    assert "lpr_http_requests_in_flight 1.0" in text, "the scrape itself is the one request in flight"


def test_not_ready_until_the_model_is_loaded(samples: dict[str, bytes]) -> None:
    """Before start-up finishes, /ready says 503 and predictions are refused, not crashed."""
    cold = TestClient(create_app(Settings()))  # no context manager: the lifespan has not run
    assert cold.get("/health").status_code == 200
    ready = cold.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    refused = cold.post("/predict", files={"file": ("ba.png", samples["ba"], "image/png")})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "model_not_ready"


def test_missing_model_stops_start_up_with_its_path(tmp_path: Path) -> None:
    """A wrong LPR_MODEL_PATH fails loudly at start-up, naming the path, not on the first request."""
    missing = tmp_path / "nope.onnx"
    with (
        pytest.raises(ModelLoadError, match=r"nope\.onnx"),
        TestClient(create_app(Settings(model_path=missing))),
    ):
        pass


def test_model_and_metadata_must_belong_together(tmp_path: Path, settings: Settings) -> None:
    """A model swapped without its metadata could report wrong labels, so it is refused."""
    shutil.copy(settings.model_files()[0], tmp_path / "m.onnx")
    metadata = json.loads(settings.model_files()[1].read_text())
    metadata["onnx"]["sha256"] = "0" * 64
    (tmp_path / "m.json").write_text(json.dumps(metadata))
    with (
        pytest.raises(ModelLoadError, match="do not belong together"),
        make_client(model_path=tmp_path / "m.onnx"),
    ):
        pass


def test_settings_come_from_lpr_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operators configure the service with LPR_* variables, as the README documents."""
    for name, value in {
        "LPR_MODEL_PATH": "/srv/m.onnx",
        "LPR_MAX_BATCH_FILES": "8",
        "LPR_MAX_UPLOAD_BYTES": "1000",
        "LPR_MAX_PIXELS": "500",
        "LPR_INTRA_OP_THREADS": "2",
        "LPR_INTER_OP_THREADS": "3",
        "LPR_HOST": "0.0.0.0",
        "LPR_PORT": "9000",
        "LPR_LOG_LEVEL": "debug",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert s.model_files() == (Path("/srv/m.onnx"), Path("/srv/m.json"))
    assert (s.max_batch_files, s.max_upload_bytes, s.max_pixels) == (8, 1000, 500)
    assert (s.intra_op_threads, s.inter_op_threads, s.host, s.port, s.log_level) == (
        2,
        3,
        "0.0.0.0",
        9000,
        "debug",
    )


def test_defaults_match_the_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of the box: shipped model, 64 files per batch, 5 MiB per upload, localhost:8000."""
    for name in (
        "MODEL_PATH",
        "MODEL_NAME",
        "MODEL_VERSION",
        "MAX_BATCH_FILES",
        "MAX_UPLOAD_BYTES",
        "HOST",
        "PORT",
    ):
        monkeypatch.delenv(f"LPR_{name}", raising=False)
    s = Settings()
    default = locate(DEFAULT_REPOSITORY, DEFAULT_MODEL)
    served = load_record(default)["quantization"]
    # The default model is the one the quantisation decision (recorded with the version) chose,
    # in its newest version.
    assert s.model_files()[0] == DEFAULT_REPOSITORY / served[served["served_by_default"]]["file"]
    assert (s.max_batch_files, s.max_upload_bytes, s.host, s.port) == (64, 5 * 1024 * 1024, "127.0.0.1", 8000)


def test_openapi_documents_responses_with_examples(client: TestClient) -> None:
    """/docs is usable: both predict routes take multipart uploads and show example answers."""
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in ("/predict", "/predict/batch", "/health", "/ready", "/model", "/metrics"):
        assert path in spec["paths"]
    predict_op = spec["paths"]["/predict"]["post"]
    assert "multipart/form-data" in predict_op["requestBody"]["content"]
    assert {"200", "413", "415", "422"} <= set(predict_op["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["Prediction"]["examples"][0]["label"] == "ba"
    assert schemas["BatchResponse"]["examples"][0]["results"][-1]["error"]["code"] == "not_an_image"


@pytest.mark.parametrize("chunk", [0, 1, 7])
def test_chunked_inference_never_changes_a_batch_answer(
    client: TestClient, test_crops: list[tuple[str, bytes]], chunk: int
) -> None:
    """Pipelining a batch in chunks is an optimisation only: same answers, same order, errors in place."""
    payloads = [data for _, data in test_crops[:40]]
    for position in (5, 16, 33):
        payloads.insert(position, b"not an image")
    files = [("files", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(payloads)]
    reference = client.post("/predict/batch", files=files).json()["results"]
    with make_client(inference_chunk=chunk) as other:
        results = other.post("/predict/batch", files=files).json()["results"]
    assert [r["status"] for r in results] == [r["status"] for r in reference]
    assert [i for i, r in enumerate(results) if r["status"] == "error"] == [5, 16, 33]
    for mine, theirs in zip(results, reference, strict=True):
        if mine["status"] == "ok":
            assert mine["label"] == theirs["label"]
            assert probabilities_by_label(mine) == pytest.approx(probabilities_by_label(theirs), abs=2e-6)


def test_answers_match_the_documented_models(client: TestClient, samples: dict[str, bytes]) -> None:
    """What /docs promises is exactly what clients receive: same fields, valid values."""
    from service.schemas import BatchItemError, BatchItemOk, BatchResponse, ClassProbability, Prediction

    single = predict(client, samples["pa"], "pa.png")
    Prediction.model_validate(single, strict=True)
    assert set(single) == set(Prediction.model_fields)
    assert all(set(p) == set(ClassProbability.model_fields) for p in single["probabilities"])

    files = [("files", ("pa.png", samples["pa"], "image/png")), ("files", ("x.txt", b"text", "text/plain"))]
    batch = client.post("/predict/batch", files=files).json()
    BatchResponse.model_validate(batch, strict=True)
    assert set(batch) == set(BatchResponse.model_fields)
    ok, error = batch["results"]
    assert set(ok) == set(BatchItemOk.model_fields)
    assert set(error) == set(BatchItemError.model_fields)
    assert {k: v for k, v in ok.items() if k not in ("index", "status")} == {
        k: v for k, v in single.items() if k != "model_version"
    }


def test_a_new_router_is_limited_and_counted_by_its_registration_alone(
    monkeypatch: pytest.MonkeyPatch, samples: dict[str, bytes]
) -> None:
    """Adding an endpoint is one router and one entry in ROUTERS: body limit and metrics follow."""
    router = APIRouter()

    @router.post("/echo-size", openapi_extra=form_body("file", many=False, description="any file"))
    async def echo_size(request: Request, engine: EngineDep) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    monkeypatch.setattr(service.main, "ROUTERS", (*service.main.ROUTERS, router))
    with make_client(max_upload_bytes=4096) as client:
        ok = client.post("/echo-size", files={"file": ("a.bin", b"x" * 100)})
        too_big = client.post("/echo-size", files={"file": ("a.bin", b"x" * 20_000)})
        text = client.get("/metrics").text
    assert ok.status_code == 200
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"
    assert 'lpr_http_requests_total{endpoint="/echo-size",method="POST",status="413"} 1.0' in text
