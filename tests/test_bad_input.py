"""Every kind of bad upload gets a 4xx JSON error that says what is wrong, and the service keeps going."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
from conftest import encode, make_client, png_bomb
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

MIB = 1024 * 1024


def assert_error(response: Response, status: int, code: str) -> dict:
    """The one error shape: ``{"error": {"code", "message"}}``, with a message a person can act on."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    return error


def upload(data: bytes, name: str = "crop.png", field: str = "file") -> dict:
    return {"files": {field: (name, data, "application/octet-stream")}}


def truncated_jpeg(samples: dict[str, bytes]) -> bytes:
    data = encode(Image.open(io.BytesIO(samples["8"])).convert("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


# (id, request kwargs for client.post("/predict", ...), status, code)
BAD_SINGLE: list[tuple[str, Callable[[dict[str, bytes]], dict], int, str]] = [
    ("empty upload", lambda s: upload(b""), 422, "empty"),
    ("text file", lambda s: upload(b"MH 1 BA 2345\n" * 20, "plate.txt"), 415, "not_an_image"),
    ("truncated png", lambda s: upload(s["ba"][: len(s["ba"]) // 2]), 422, "corrupt"),
    ("truncated jpeg", lambda s: upload(truncated_jpeg(s), "8.jpg"), 422, "corrupt"),
    ("bomb 20000x20000", lambda s: upload(png_bomb()), 413, "too_many_pixels"),
    (
        "bomb 6000x6000 (under Pillow's own limit)",
        lambda s: upload(png_bomb(6000, 6000)),
        413,
        "too_many_pixels",
    ),
    ("6 MB upload", lambda s: upload(b"\xff" * (6 * 1000 * 1000)), 413, "request_too_large"),
    ("wrong field name", lambda s: upload(s["ba"], field="image"), 422, "missing_field"),
    ("no body at all", lambda s: {}, 422, "missing_field"),
    ("field sent as text", lambda s: {"data": {"file": "ba.png"}}, 422, "invalid_field"),
    (
        "garbage multipart body",
        lambda s: {
            "content": b"\x00\x01 this is not multipart \xff" * 50,
            "headers": {"content-type": "multipart/form-data; boundary=XyZ"},
        },
        400,
        "malformed_body",
    ),
    (
        "urlencoded field with a non-latin escape",
        lambda s: {
            "content": b"file=%E2%82%AC%FF",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        422,
        "invalid_field",
    ),
    (
        "boundary longer than multipart allows",
        lambda s: {
            "content": b"--" + b"b" * 300 + b"\r\n",
            "headers": {"content-type": "multipart/form-data; boundary=" + "b" * 300},
        },
        400,
        "malformed_body",
    ),
    (
        "multipart cut off mid-part",
        lambda s: {
            "content": b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="ba.png"\r\n\r\n'
            + s["ba"][:300],
            "headers": {"content-type": "multipart/form-data; boundary=XyZ"},
        },
        400,
        "malformed_body",
    ),
    (
        "multipart without boundary",
        lambda s: {"content": s["ba"], "headers": {"content-type": "multipart/form-data"}},
        400,
        "malformed_body",
    ),
]


@pytest.mark.parametrize(
    ("make_request", "status", "code"), [c[1:] for c in BAD_SINGLE], ids=[c[0] for c in BAD_SINGLE]
)
def test_bad_single_upload_is_a_clear_4xx(
    client: TestClient, samples: dict[str, bytes], make_request: Callable, status: int, code: str
) -> None:
    """A client mistake is a 4xx with a code to branch on, never a 5xx."""
    assert_error(client.post("/predict", **make_request(samples)), status, code)


def test_missing_field_names_the_field(client: TestClient, samples: dict[str, bytes]) -> None:
    """The message tells the user which field to send."""
    error = assert_error(
        client.post("/predict", **upload(samples["ba"], field="image")), 422, "missing_field"
    )
    assert "'file'" in error["message"]
    error = assert_error(
        client.post("/predict/batch", **upload(samples["ba"], field="file")), 422, "missing_field"
    )
    assert "'files'" in error["message"]


def test_wrong_method_and_path_are_json_too(client: TestClient) -> None:
    assert_error(client.get("/predict"), 405, "method_not_allowed")
    assert_error(client.get("/predictions"), 404, "not_found")


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_undeclared_oversized_body_is_stopped_while_streaming(client: TestClient) -> None:
    """A chunked upload (no Content-Length) is cut off at the limit rather than buffered whole."""
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'.encode()
        + b"\x00" * (6 * MIB)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        "/predict",
        content=chunks(body),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(response, 413, "request_too_large")


def test_file_over_the_limit_inside_an_acceptable_body_is_413() -> None:
    """The per-file limit holds even when multipart framing leaves room in the body limit."""
    with make_client(max_upload_bytes=1000) as small:
        assert_error(small.post("/predict", **upload(b"\x89PNG" + b"\x00" * 1500)), 413, "file_too_large")


def test_batch_over_the_file_limit_is_refused(client: TestClient, samples: dict[str, bytes]) -> None:
    files = [("files", (f"{i}.png", samples["1"], "image/png")) for i in range(65)]
    error = assert_error(client.post("/predict/batch", files=files), 413, "too_many_files")
    assert "64" in error["message"]


def test_batch_with_no_files_is_422(client: TestClient) -> None:
    assert_error(client.post("/predict/batch"), 422, "missing_field")
    assert_error(client.post("/predict/batch", data={"note": "nothing attached"}), 422, "missing_field")


def test_batch_body_over_its_limit_is_413(samples: dict[str, bytes]) -> None:
    """The whole batch body is bounded by max_batch_files x max_upload_bytes (plus framing)."""
    with make_client(max_batch_files=2, max_upload_bytes=1000) as small:
        files = [
            ("files", ("a.png", b"\x00" * 10_000, "image/png")),
            ("files", ("b.png", b"\x00" * 10_000, "image/png")),
        ]
        assert_error(small.post("/predict/batch", files=files), 413, "request_too_large")


def test_batch_file_over_the_per_file_limit_gets_its_own_error(samples: dict[str, bytes]) -> None:
    """In a batch, an oversized file is one error entry; the other files are still classified."""
    with make_client(max_upload_bytes=20_000) as small:
        files = [
            ("files", ("1.png", samples["1"], "image/png")),
            ("files", ("huge.png", b"\x00" * 30_000, "image/png")),
            ("files", ("pa.png", samples["pa"], "image/png")),
        ]
        response = small.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ok", "error", "ok"]
    assert results[1]["filename"] == "huge.png"
    assert results[1]["error"]["code"] == "file_too_large"


def test_service_keeps_answering_after_every_bad_input(client: TestClient, samples: dict[str, bytes]) -> None:
    """After a barrage of bad requests the same process still classifies correctly."""
    for _, make_request, status, _ in BAD_SINGLE:
        assert client.post("/predict", **make_request(samples)).status_code == status
    assert client.post("/predict/batch").status_code == 422
    assert client.get("/ready").status_code == 200
    good = client.post("/predict", files={"file": ("pa.png", samples["pa"], "image/png")})
    assert good.status_code == 200
    assert good.json()["label"] == "pa"


def test_an_oversized_part_is_kept_only_to_one_byte_over_the_limit() -> None:
    """A batch of huge files costs no more memory per part than the limit, and is still refused."""
    from service.multipart import parse_form

    body = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n\r\n'
        + b"x" * 100_000
        + b"\r\n--b\r\n"
        + b'Content-Disposition: form-data; name="files"; filename="ok.png"\r\n\r\nabc\r\n--b--\r\n'
    )
    big, ok = parse_form(body, "multipart/form-data; boundary=b", max_parts=4, max_part_bytes=1000)
    assert (big.filename, len(big.data)) == ("big.png", 1001)
    assert (ok.filename, ok.data) == ("ok.png", b"abc")
