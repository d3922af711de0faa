"""Start and stop the real server the README's way (``python -m service``), for benchmarks and soak runs.

A measurement is only worth reporting if it was taken against the server users
run, so this starts ``python -m service`` as a subprocess configured purely by
``LPR_*`` environment variables, waits for ``/ready``, and stops it with SIGTERM
(the orchestrator's way) rather than a kill, so a run also shows that it drains.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it; loopback only)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from ``/proc/<pid>/status`` (Linux), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Server:
    """A running ``python -m service`` and where its output goes."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    ready: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> dict:
        """Poll ``/ready`` until it answers 200; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status, log = self.process.returncode, self.log()[-2000:]
                raise RuntimeError(f"server exited with {status} before it was ready; log:\n{log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ready")
                response = conn.getresponse()
                body = response.read()
                conn.close()
                if response.status == 200:
                    self.ready = json.loads(body)
                    return self.ready
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready within {timeout:.0f} s")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; the exit status (0 after a clean drain). Kills only if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def start(
    env: Mapping[str, str] | None = None, *, log_path: Path, port: int | None = None, checkout: Path = ROOT
) -> Server:
    """Launch ``python -m service`` from ``checkout`` on 127.0.0.1, ``env`` added to this environment."""
    port = port or free_port()
    full_env = {**os.environ, **(env or {}), "LPR_HOST": "127.0.0.1", "LPR_PORT": str(port)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=checkout,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Server(process, port, log_path)


@contextmanager
def running(
    env: Mapping[str, str] | None = None,
    *,
    log_path: Path,
    port: int | None = None,
    ready_timeout: float = 60.0,
    checkout: Path = ROOT,
) -> Iterator[Server]:
    """A ready server for the ``with`` block; stopped with SIGTERM (killed if it hangs) afterwards."""
    server = start(env, log_path=log_path, port=port, checkout=checkout)
    try:
        server.wait_ready(ready_timeout)
        yield server
    finally:
        server.stop()
