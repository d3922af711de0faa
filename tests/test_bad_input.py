"""Every kind of bad upload gets a 4xx JSON error that says what is wrong, and the service keeps going."""

from __future__ import annotations

import functools
import io
import json
import time
from collections.abc import Callable, Iterator

import anyio
import numpy as np
import pytest
from conftest import SHARED, encode, make_client, png_bomb
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

from lpr.repository import DEFAULT_REPOSITORY
from service.limits import BodyLimits, BodySizeLimitMiddleware
from training.data.photos import detector_dataset

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


# -- a refused body on a connection that closes: read to its end first, within bounds ------------


class Client:
    """An HTTP client as the ASGI app sees it: a body of ``chunks`` 64 KiB chunks, then silence."""

    def __init__(self, chunks: int, *, then_stalls: bool = False) -> None:
        self.left = chunks
        self.then_stalls = then_stalls
        self.read = 0

    async def receive(self) -> dict:
        if self.left == 0:
            await anyio.sleep_forever()  # a client that stopped sending (or one that sends slowly)
        self.left -= 1
        self.read += 1
        return {
            "type": "http.request",
            "body": bytes(64 * 1024),
            "more_body": self.left > 0 or self.then_stalls,
        }


def refuse(headers: dict[str, str], client: Client, *, version: str = "1.1", **bounds: float) -> list[dict]:
    """What the body limit (1000 bytes on /up) sends for a declared 1 MiB body: the app never runs."""

    async def app(scope: dict, receive: object, send: object) -> None:
        raise AssertionError("a refused body never reaches the app")

    limits = BodyLimits({"/up": 1000}, bounds.get("seconds", 5.0), int(bounds.get("bytes", 10 * MIB)))
    middleware = BodySizeLimitMiddleware(app, limits)
    scope = {
        "type": "http",
        "http_version": version,
        "method": "POST",
        "path": "/up",
        "headers": [(b"content-length", str(MIB).encode())]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    anyio.run(middleware, scope, client.receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(b"".join(m.get("body", b"") for m in sent[1:]))["error"]["code"] == "request_too_large"
    assert not sent[-1].get("more_body", False), "the answer is complete"
    return sent


@pytest.mark.parametrize(
    ("headers", "version"),
    [({"Connection": "close"}, "1.1"), ({"Connection": "Keep-Alive, close"}, "1.1"), ({}, "1.0")],
)
def test_a_connection_that_closes_is_answered_at_once_and_closed_once_the_body_is_read(
    headers: dict[str, str], version: str
) -> None:
    client = Client(16)
    sent = refuse(headers, client, version=version)
    assert client.read == 16, "the whole body was read (and dropped) before the close"
    assert sent[1]["more_body"] is True and json.loads(sent[1]["body"]), (
        "every byte of the 413 went out first"
    )


@pytest.mark.parametrize(
    "headers", [{}, {"Connection": "keep-alive"}, {"Expect": "100-continue", "Connection": "close"}]
)
def test_a_kept_alive_connection_or_a_client_waiting_to_continue_is_answered_without_reading(
    headers: dict[str, str],
) -> None:
    """Kept alive: the server discards the rest itself. Expect: the client has sent nothing to read."""
    client = Client(16)
    sent = refuse(headers, client)
    assert client.read == 0 and len(sent) == 2


def test_the_lingering_close_is_bounded_in_bytes_and_in_time() -> None:
    endless = Client(10_000)
    refuse({"Connection": "close"}, endless, bytes=4 * 64 * 1024)
    assert endless.read == 5, "read just past LPR_LINGER_BYTES, then closed"
    stalled = Client(3, then_stalls=True)
    started = time.monotonic()
    refuse({"Connection": "close"}, stalled, seconds=0.3)
    assert stalled.read == 3 and 0.3 <= time.monotonic() - started < 2, "closed after LPR_LINGER_SECONDS"


# -- phone photos: /read-plate's own limits -------------------------------------------------------


@functools.cache
def phone_photo() -> bytes:
    """A phone's full-size JPEG of a busy scene: a held-out plate photo at 4000x3000, sensor noise on top.

    The noise is what makes a phone's JPEG big: at quality 95 this is about 8 MB,
    as a 12 MP camera's picture of a street is; the crop limit is 5 MiB.
    """
    (name, *_) = detector_dataset(DEFAULT_REPOSITORY)["validation"]
    photo = SHARED / "data" / "plate-photos" / "images" / name
    pixels = np.asarray(Image.open(photo).convert("RGB").resize((4000, 3000), Image.Resampling.BILINEAR))
    noise = np.tile(np.random.default_rng(0).integers(0, 64, (600, 800, 3), dtype=np.uint8), (5, 5, 1))
    return encode(Image.fromarray(np.minimum(pixels, 255 - 64) + noise), "JPEG", quality=95)


def test_a_phone_photo_is_read_by_read_plate_and_too_large_for_the_crop_routes(client: TestClient) -> None:
    data = phone_photo()
    assert 7 * MIB <= len(data) <= 20 * MIB
    read = client.post("/read-plate", **upload(data, "phone.jpg"))
    assert read.status_code == 200, read.text
    assert read.json()["image"] == {"width": 4000, "height": 3000} and read.json()["plates"]
    assert_error(client.post("/predict", **upload(data, "phone.jpg")), 413, "request_too_large")
    batch = client.post("/predict/batch", files=[("files", ("phone.jpg", data, "image/jpeg"))])
    assert batch.status_code == 200 and batch.json()["results"][0]["error"]["code"] == "file_too_large"
    # A 24 MP camera's picture passes /read-plate's pixel limit, not a crop route's.
    big = png_bomb(6000, 4000)
    assert client.post("/read-plate", **upload(big, "24mp.png")).status_code == 200
    assert_error(client.post("/predict", **upload(big, "24mp.png")), 413, "too_many_pixels")


def test_the_photo_limits_are_read_plates_own() -> None:
    """LPR_MAX_PHOTO_BYTES and LPR_MAX_PHOTO_PIXELS bound /read-plate; the crop routes keep theirs."""
    with make_client(max_photo_bytes=10_000, max_photo_pixels=20_000_000) as small:
        file_over = upload(b"\x89PNG" + b"\x00" * 12_000)  # over the file limit, within the body's
        assert_error(small.post("/read-plate", **file_over), 413, "file_too_large")
        assert small.post("/predict", **file_over).status_code != 413
        assert_error(small.post("/read-plate", **upload(b"\x00" * 20_000)), 413, "request_too_large")
        assert_error(small.post("/read-plate", **upload(png_bomb(5000, 5000))), 413, "too_many_pixels")
