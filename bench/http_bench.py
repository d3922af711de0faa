"""HTTP benchmark of the service, started the README's way (``python -m service``).

Prints a table and writes ``bench/results/http.json``. The objectives (2-core
machine, shipped model): ``POST /predict`` p50 <= 5 ms and p99 <= 20 ms at one
client; ``POST /predict/batch`` with 64 crops per request >= 1,000 images/s.

Single-image latency is measured with one keep-alive ``http.client``
connection, sequential requests, real test crops. Batch throughput uses
``wrk`` (a Lua script posting a prebuilt multipart body) when it is installed,
and the same sequential Python client always, so the number exists everywhere.

    .venv/bin/python -m bench.http_bench [--requests 500] [--batches 30] [--wrk-seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "bench" / "results"
BATCH = 64

OBJECTIVES = {"predict_p50_ms": 5.0, "predict_p99_ms": 20.0, "batch_images_per_s": 1000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def multipart(field: str, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def start_server(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LPR_HOST": "127.0.0.1", "LPR_PORT": str(port)}
    log = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def wait_ready(port: int, server: subprocess.Popen[bytes], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}; see bench/results/server.log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            response = conn.getresponse()
            body = json.loads(response.read())
            conn.close()
            if response.status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not become ready in time")


def post(conn: http.client.HTTPConnection, path: str, body: bytes, content_type: str) -> float:
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}: {payload[:300]!r}")
    return elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency(port: int, crops: list[tuple[str, bytes]], requests: int, warmup: int = 50) -> dict:
    bodies = [multipart("file", [crop]) for crop in crops]
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(warmup):
        post(conn, "/predict", *bodies[i % len(bodies)])
    times = [post(conn, "/predict", *bodies[i % len(bodies)]) * 1000 for i in range(requests)]
    conn.close()
    return {
        "requests": requests,
        "p50_ms": round(percentile(times, 50), 3),
        "p90_ms": round(percentile(times, 90), 3),
        "p99_ms": round(percentile(times, 99), 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "max_ms": round(max(times), 3),
    }


def batch_python(port: int, body: bytes, content_type: str, batches: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(3):
        post(conn, "/predict/batch", body, content_type)
    started = time.perf_counter()
    times = [post(conn, "/predict/batch", body, content_type) for _ in range(batches)]
    total = time.perf_counter() - started
    conn.close()
    return {
        "client": "python http.client, 1 connection, sequential",
        "requests": batches,
        "images_per_s": round(batches * BATCH / total, 1),
        "p50_request_ms": round(percentile(times, 50) * 1000, 2),
    }


WRK_SCRIPT = """
local f = assert(io.open(os.getenv("LPR_BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("LPR_BENCH_CONTENT_TYPE")
"""


def batch_wrk(port: int, body: bytes, content_type: str, seconds: int, connections: int) -> dict | None:
    wrk = shutil.which("wrk")
    if wrk is None or seconds <= 0:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "body.bin").write_bytes(body)
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
        env = {
            **os.environ,
            "LPR_BENCH_BODY": str(Path(tmp) / "body.bin"),
            "LPR_BENCH_CONTENT_TYPE": content_type,
        }
        command = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(Path(tmp) / "post.lua"),
        ]
        output = subprocess.run(
            [*command, f"http://127.0.0.1:{port}/predict/batch"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if bad:
        raise SystemExit(f"wrk saw {bad.group(1)} error responses:\n{output}")
    return {
        "client": f"wrk -t1 -c{connections} -d{seconds}s",
        "requests_per_s": rate,
        "images_per_s": round(rate * BATCH, 1),
        "raw": output.strip().splitlines()[-12:],
    }


def load_crops(limit: int | None = None) -> list[tuple[str, bytes]]:
    paths = sorted((SHARED / "data" / "lpr" / "test").glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"no test crops under {SHARED / 'data' / 'lpr' / 'test'}")
    random.Random(0).shuffle(paths)
    return [(f"{p.parent.name}_{p.name}", p.read_bytes()) for p in paths[:limit]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500, help="timed /predict requests per crop set")
    parser.add_argument(
        "--batches", type=int, default=30, help="timed /predict/batch requests (python client)"
    )
    parser.add_argument("--wrk-seconds", type=int, default=10, help="wrk run length; 0 skips wrk")
    parser.add_argument("--wrk-connections", type=int, default=1)
    args = parser.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    crops = load_crops()
    samples = [(p.name, p.read_bytes()) for p in sorted((SHARED / "samples").glob("*.png"))]
    port = free_port()
    server = start_server(port, RESULTS / "server.log")
    try:
        ready = wait_ready(port, server)
        load_before = os.getloadavg()
        single = latency(port, crops, args.requests)
        single_colour = latency(port, samples, args.requests) if samples else None
        body, content_type = multipart("files", crops[:BATCH])
        batch = batch_python(port, body, content_type, args.batches)
        batch_w = batch_wrk(port, body, content_type, args.wrk_seconds, args.wrk_connections)
    finally:
        server.terminate()
        server.wait(timeout=30)

    best_batch = max(b["images_per_s"] for b in (batch, batch_w) if b)
    results = {
        "model_version": ready.get("model_version"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in load_before],
        },
        "predict_dataset_crops": single,
        "predict_colour_samples": single_colour,
        "batch_64_python": batch,
        "batch_64_wrk": batch_w,
        "objectives": OBJECTIVES,
        "met": {
            "predict_p50_ms": single["p50_ms"] <= OBJECTIVES["predict_p50_ms"],
            "predict_p99_ms": single["p99_ms"] <= OBJECTIVES["predict_p99_ms"],
            "batch_images_per_s": best_batch >= OBJECTIVES["batch_images_per_s"],
        },
    }
    (RESULTS / "http.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")

    print(f"model: {results['model_version']}   cpus: {os.cpu_count()}   loadavg: {load_before[0]:.2f}")
    print(f"{'measure':<44}{'value':>12}{'objective':>12}  met")
    rows = [
        ("POST /predict p50 (dataset crops), ms", single["p50_ms"], "<= 5", results["met"]["predict_p50_ms"]),
        (
            "POST /predict p99 (dataset crops), ms",
            single["p99_ms"],
            "<= 20",
            results["met"]["predict_p99_ms"],
        ),
    ]
    if single_colour:
        rows += [
            ("POST /predict p50 (colour samples), ms", single_colour["p50_ms"], "", None),
            ("POST /predict p99 (colour samples), ms", single_colour["p99_ms"], "", None),
        ]
    rows.append(("POST /predict/batch x64, images/s (python)", batch["images_per_s"], ">= 1000", None))
    if batch_w:
        rows.append(
            (f"POST /predict/batch x64, images/s ({batch_w['client']})", batch_w["images_per_s"], "", None)
        )
    rows.append(("best batch images/s", best_batch, ">= 1000", results["met"]["batch_images_per_s"]))
    for name, value, objective, met in rows:
        print(f"{name:<44}{value:>12}{objective:>12}  {'' if met is None else ('yes' if met else 'NO')}")
    print(f"written: {RESULTS / 'http.json'}")


if __name__ == "__main__":
    main()
