"""Graceful shutdown: a SIGTERM lets every request already in flight finish, then the process exits 0.

That is what a rolling update relies on: the orchestrator sends SIGTERM to the
old replica, stops routing to it, and the clients it was serving still get
their answers. The requests here are provably in flight when the signal
arrives: each one's headers and first half of its body are sent first, and the
second half only after the server has been told to stop.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server import start_server, wait_until_ready

pytestmark = pytest.mark.slow

IN_FLIGHT = 4


def batch_body(crops: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{i}-{label}.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, (label, data) in enumerate(crops)
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def held_body(body: bytes, sent_first_half: threading.Event, release: threading.Event) -> Iterator[bytes]:
    """The body in two chunks (no Content-Length: chunked), the second only after ``release``."""
    half = len(body) // 2
    yield body[:half]
    sent_first_half.set()
    release.wait(timeout=30)
    yield body[half:]


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_sigterm_drains_requests_in_flight_and_exits_zero(
    tmp_path: Path, test_crops: list[tuple[str, bytes]]
) -> None:
    log_path = tmp_path / "server.log"
    base, process = start_server(log_path, LPR_GRACEFUL_TIMEOUT="20", LPR_WORKERS="1")
    port = int(base.rsplit(":", 1)[1])
    try:
        wait_until_ready(base, process)
        body, content_type = batch_body(test_crops)  # 64 crops: the largest batch
        release = threading.Event()
        started = [threading.Event() for _ in range(IN_FLIGHT)]
        answers: list[httpx.Response | BaseException | None] = [None] * IN_FLIGHT

        def send(index: int) -> None:
            try:
                with httpx.Client(timeout=60) as client:
                    answers[index] = client.post(
                        f"{base}/predict/batch",
                        content=held_body(body, started[index], release),
                        headers={"content-type": content_type},
                    )
            except BaseException as exc:  # reported by the assertions below
                answers[index] = exc

        threads = [threading.Thread(target=send, args=(i,)) for i in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        for event in started:
            assert event.wait(timeout=10), "a client never started sending"
        time.sleep(0.3)  # the first halves reach the server: these requests are now in flight

        process.send_signal(signal.SIGTERM)
        # The server stops accepting new connections at once, while the old ones are still open...
        deadline = time.monotonic() + 5
        while not refuses_connections(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refuses_connections(port), "the server still accepts connections after SIGTERM"
        assert process.poll() is None, "the server exited with requests in flight"
        assert not any(answers), "a request in flight was answered before its body was complete"

        # ...and once the bodies are complete, every request in flight is answered in full.
        release.set()
        for thread in threads:
            thread.join(timeout=60)
        for answer in answers:
            assert isinstance(answer, httpx.Response), f"request in flight failed: {answer!r}"
            assert answer.status_code == 200, answer.text[:300]
            result = answer.json()
            assert result["count"] == len(test_crops) == result["classified"]
            assert [r["index"] for r in result["results"]] == list(range(len(test_crops)))
            assert all(r["status"] == "ok" and r["label"] for r in result["results"])

        assert process.wait(timeout=15) == 0
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    log = log_path.read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log and "timeout graceful shutdown exceeded" not in log
