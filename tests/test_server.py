"""The real server, started the README's way (``python -m service``), over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, SAMPLE_CLASSES

from lpr.labels import DEVANAGARI

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(log_path: Path, **settings: str) -> tuple[str, subprocess.Popen]:
    """``python -m service`` on a free 127.0.0.1 port with ``LPR_*`` ``settings``: (base URL, process)."""
    port = free_port()
    env = {**os.environ, "LPR_HOST": "127.0.0.1", "LPR_PORT": str(port), **settings}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return f"http://127.0.0.1:{port}", process


def wait_until_ready(base: str, process: subprocess.Popen, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited early with {process.returncode}"
        try:
            response = httpx.get(f"{base}/ready", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server never became ready")


@contextmanager
def running_server(log_path: Path, **settings: str) -> Iterator[str]:
    """A ready ``python -m service`` for the ``with`` block (its base URL), stopped with SIGTERM after."""
    base, process = start_server(log_path, **settings)
    try:
        wait_until_ready(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    log_path = tmp_path / "server.log"
    base, process = start_server(log_path)
    try:
        yield base, process, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_server_classifies_samples_over_http_and_stops_cleanly(
    server: tuple[str, subprocess.Popen, Path], samples: dict[str, bytes]
) -> None:
    """What a user does after `make serve`: curl the samples, scrape metrics, stop with Ctrl-C/SIGTERM."""
    base, process, log_path = server
    ready = wait_until_ready(base, process)
    assert ready.json()["status"] == "ready"

    with httpx.Client(base_url=base, timeout=10) as http:
        for name in SAMPLE_CLASSES:
            response = http.post("/predict", files={"file": (f"{name}.png", samples[name], "image/png")})
            assert response.status_code == 200, response.text
            assert (response.json()["label"], response.json()["devanagari"]) == (name, DEVANAGARI[name])

        files = [("files", (f"{n}.png", samples[n], "image/png")) for n in SAMPLE_CLASSES]
        batch = http.post("/predict/batch", files=files)
        assert [r["label"] for r in batch.json()["results"]] == list(SAMPLE_CLASSES)
        assert http.post("/predict", files={"file": ("x.txt", b"hello", "text/plain")}).status_code == 415

        metrics = http.get("/metrics").text
    assert 'lpr_http_requests_total{endpoint="/predict",method="POST",status="200"} 4.0' in metrics
    assert 'lpr_http_requests_total{endpoint="/predict",method="POST",status="415"} 1.0' in metrics
    assert 'lpr_http_requests_total{endpoint="/ready",method="GET",status="200"}' in metrics
    assert (
        sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("lpr_images_classified_total{")
        )
        == 8.0
    )
    # 4 single crops and a batch of 4: every image through ONNX Runtime exactly once.
    assert "lpr_model_inference_batch_size_sum 8.0" in metrics

    process.send_signal(signal.SIGTERM)
    # uvicorn drains and shuts down; SIGTERM is a normal stop, so the status is 0 (service/__main__.py).
    assert process.wait(timeout=20) == 0
    log = log_path.read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log


BOUNDARY = "b0undary"
PART = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'.encode()
TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
FORM = f"multipart/form-data; boundary={BOUNDARY}"


def request_head(size: int, headers: str = "", version: str = "1.1") -> bytes:
    """The head of a ``POST /predict`` whose body is one file of ``size`` bytes: PART, the bytes, TAIL."""
    length = len(PART) + size + len(TAIL)
    return (
        f"POST /predict HTTP/{version}\r\nHost: test\r\nContent-Type: {FORM}\r\n"
        f"Content-Length: {length}\r\n{headers}\r\n"
    ).encode()


def send_whole_body(
    port: int, size: int, headers: str = "", version: str = "1.1"
) -> tuple[bytes, Exception | None]:
    """Write a ``size``-byte upload as fast as the socket takes it, then read until the server closes.

    Returns what the server sent and the error that cut the exchange short, if any.
    """
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(request_head(size, headers, version) + PART)
            chunk = bytes(1024 * 1024)
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
            sock.sendall(bytes(size % len(chunk)) + TAIL)
            while data := sock.recv(65536):
                answer += data
        except OSError as exc:
            return answer, exc
    return answer, None


def refusal(answer: bytes) -> str:
    """The error code of a whole 413 answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 413", b"HTTP/1.0 413")), answer[:300]
    return json.loads(body)["error"]["code"]


def test_a_30_mb_upload_from_a_client_that_closes_gets_its_413(tmp_path: Path) -> None:
    """urllib and many embedded clients send ``Connection: close`` and no ``Expect``, write it all, then read.

    The server closes a connection once it has answered such a request, and
    closing on unread data resets it: the client saw "connection reset" instead
    of the 413. The rest of the body is now read and dropped first (a lingering
    close), up to LPR_LINGER_BYTES; a client sending past that is still cut off.
    (Kept-alive connections: tests/test_soak.py.)
    """
    size = 30 * 1000 * 1000
    with running_server(tmp_path / "server.log") as base:
        port = int(base.rsplit(":", 1)[1])
        request = urllib.request.Request(
            f"{base}/predict", data=PART + bytes(size) + TAIL, headers={"Content-Type": FORM}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 413
        assert json.loads(refused.value.read())["error"]["code"] == "request_too_large"

        for headers, version in [
            ("Connection: close\r\n", "1.1"),
            ("Connection: keep-alive, Close\r\n", "1.1"),
            ("", "1.0"),
        ]:
            answer, error = send_whole_body(port, size, headers, version)
            assert error is None, (headers, version, error)  # answered, then closed cleanly: no reset
            assert refusal(answer) == "request_too_large"

        # Expect: 100-continue: the client waits, is refused at once, and never sends the body.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request_head(size, "Expect: 100-continue\r\nConnection: close\r\n"))
            assert refusal(b"".join(iter(lambda: sock.recv(65536), b""))) == "request_too_large"

        # Bounded: 100 MB is more than the server reads of a refused body (64 MiB), so it is cut off.
        answer, error = send_whole_body(port, 100 * 1000 * 1000, "Connection: close\r\n")
        assert isinstance(error, ConnectionError), (error, answer[:200])
        assert httpx.get(f"{base}/ready", timeout=10).status_code == 200
