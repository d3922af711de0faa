"""Soak run: many concurrent clients mixing good crops and malformed uploads against the real server.

The service must stay correct and bounded under sustained, hostile traffic, not
just answer one request well. This starts ``python -m service`` (``bench.server``)
with a small ``LPR_MAX_UPLOAD_BYTES``, then ``--clients`` asyncio clients
(one keep-alive ``httpx.AsyncClient`` each) send, through a warm-up and then
``--seconds`` of measured load:

* good crops: real test crops (and the colour samples) to ``/predict`` and
  ``/predict/batch``; only crops that the same pipeline run in-process
  classifies as their true class are used, so every answer must name it;
* batches mixing good crops with bad files, whose entries must carry the
  documented per-file codes while the good ones are still classified;
* malformed requests, each of which must get its documented status and code
  (``service.errors.STATUS_BY_CODE``): empty file, not an image, truncated
  JPEG, decompression bomb, file over the upload limit, body over the limit
  (declared and chunked), too many files, missing field, wrong field name,
  field sent as text, broken multipart, unknown path, wrong method.

Warm-up lasts ``--warmup`` seconds and until every client's opening request,
the largest batch, has been answered: the memory the server keeps after that
peak (all clients at the biggest shape at once; allocators and thread pools do
not give it back) is then in the RSS baseline. Without the opening burst, RSS crept
up for the whole minute as the random mix slowly reached the same peak, which
read as a leak; with it, RSS is flat after warm-up.

Pass criteria (exit status 1 otherwise): no 5xx, no connection errors or
timeouts, no wrong answer for a good crop, every malformed request answered
with its code, server RSS growth after warm-up under 10 %, no traceback in the
server log, and a clean exit (status 0) on SIGTERM at the end.

Prints a table and writes ``bench/results/soak.json``.

    .venv/bin/python -m bench.soak [--seconds 60] [--warmup 5] [--clients 32] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import struct
import sys
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.server import ROOT, Server, running
from service.errors import STATUS_BY_CODE

SHARED = ROOT.parent / "shared"
TEST_CROPS = SHARED / "data" / "lpr" / "test"
SAMPLES = SHARED / "samples"
RESULTS = ROOT / "bench" / "results"

#: Small so the over-the-limit cases stay cheap to send; every real crop is far below it.
MAX_UPLOAD_BYTES = 64 * 1024
RSS_GROWTH_LIMIT = 0.10
#: Each client's first request (weight 0 afterwards): the largest batch, all clients at once.
PEAK_KIND = "full /predict/batch (opening)"


# ---------------------------------------------------------------- payloads


@dataclass(frozen=True)
class Crop:
    name: str
    data: bytes
    label: str  # true class, which the in-process pipeline also answers


def load_crops(max_upload_bytes: int) -> tuple[list[Crop], list[str]]:
    """Test crops and colour samples that the shipped pipeline, run in-process, gets right.

    Returns the crops and the names left out: a crop the model misclassifies
    would make a "wrong answer" mean nothing about the server.
    """
    from lpr.char_finder import CharFinder
    from lpr.detection import Detector
    from lpr.model import Model
    from service.config import Settings
    from service.engine import InferenceEngine
    from service.metrics import Metrics

    candidates = [
        (f"{p.parent.name}/{p.name}", p.read_bytes(), p.parent.name) for p in TEST_CROPS.glob("*/*.jpg")
    ]
    candidates += [(p.name, p.read_bytes(), p.stem) for p in SAMPLES.glob("*.png")]
    candidates.sort()
    if not candidates:
        raise SystemExit(f"no crops under {TEST_CROPS}")
    settings = Settings(max_upload_bytes=max_upload_bytes)
    detector = Detector(*settings.detector_files())
    finder = CharFinder(*settings.finder_files())
    letters = Model(*settings.letters_files())
    engine = InferenceEngine(Model(*settings.model_files()), detector, finder, letters, settings, Metrics())
    try:
        outcomes = engine.classify_files([data for _, data, _ in candidates])
    finally:
        engine.close()
    crops, left_out = [], []
    for (name, data, label), outcome in zip(candidates, outcomes, strict=True):
        if isinstance(outcome, dict) and outcome["label"] == label:
            crops.append(Crop(name, data, label))
        else:
            left_out.append(name)
    return crops, left_out


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 10_000, height: int = 10_000) -> bytes:
    """A valid ~12 KB 1-bit PNG declaring 100 M pixels: it must be refused before decoding."""
    idat = zlib.compress(b"\x00" * ((1 + (width + 7) // 8) * height), 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def truncated_jpeg(crop: Crop) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(crop.data)).convert("RGB").resize((96, 96)).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    return data[: len(data) // 2]


@dataclass(frozen=True)
class BadFile:
    """A file that a batch must answer with an error entry carrying ``code``."""

    name: str
    data: bytes
    code: str


def bad_files(crops: list[Crop], max_upload_bytes: int) -> list[BadFile]:
    return [
        BadFile("empty.png", b"", "empty"),
        BadFile("plate.txt", b"BA 1 PA 2345\n" * 40, "not_an_image"),
        BadFile("half.jpg", truncated_jpeg(crops[0]), "corrupt"),
        BadFile("bomb.png", png_bomb(), "too_many_pixels"),
        BadFile("big.bin", b"\xff" * (max_upload_bytes + 1024), "file_too_large"),
    ]


async def chunked(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    """A body with no Content-Length, so the server must stop it while streaming."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def multipart_body(
    field_name: str, name: str, data: bytes, boundary: str = "soakb0undary"
) -> tuple[bytes, str]:
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------- request kinds


@dataclass
class Request:
    """What one client sends, and what it must get back."""

    method: str
    path: str
    kwargs: dict[str, Any]
    status: int
    code: str | None = None  # the error code, for an error answer
    labels: list[str | BadFile] | None = None  # per upload: expected label, or the bad file
    images: int = 0  # good crops in the request


@dataclass
class Kind:
    name: str
    weight: float
    make: Callable[[random.Random], Request]


def error_request(method: str, path: str, code: str, **kwargs: Any) -> Request:
    return Request(method, path, kwargs, STATUS_BY_CODE[code], code)


def build_kinds(crops: list[Crop], max_upload_bytes: int, max_batch_files: int) -> list[Kind]:
    bad = {b.code: b for b in bad_files(crops, max_upload_bytes)}

    def single(b: BadFile) -> Callable[[random.Random], Request]:
        return lambda rng: error_request("POST", "/predict", b.code, files={"file": (b.name, b.data)})

    def good_single(rng: random.Random) -> Request:
        crop = rng.choice(crops)
        return Request(
            "POST", "/predict", {"files": {"file": (crop.name, crop.data)}}, 200, None, [crop.label], 1
        )

    def good_batch(rng: random.Random, n: int | None = None) -> Request:
        n = n or (max_batch_files if rng.random() < 0.1 else rng.randint(2, 16))
        chosen = [rng.choice(crops) for _ in range(n)]
        files = [("files", (c.name, c.data)) for c in chosen]
        return Request("POST", "/predict/batch", {"files": files}, 200, None, [c.label for c in chosen], n)

    def mixed_batch(rng: random.Random) -> Request:
        uploads: list[Crop | BadFile] = [rng.choice(crops) for _ in range(rng.randint(2, 12))]
        uploads += rng.sample(list(bad.values()), rng.randint(1, 3))
        rng.shuffle(uploads)
        files = [("files", (u.name, u.data)) for u in uploads]
        expected = [u.label if isinstance(u, Crop) else u for u in uploads]
        good = sum(isinstance(u, Crop) for u in uploads)
        return Request("POST", "/predict/batch", {"files": files}, 200, None, expected, good)

    tiny = crops[0]
    big_body = b"\x00" * (max_upload_bytes * 3)
    streamed, streamed_type = multipart_body("file", "huge.bin", big_body)
    garbage = b"\x00\x01 this is not multipart \xff" * 50
    return [
        Kind("good /predict", 40, good_single),
        Kind("good /predict/batch", 14, good_batch),
        Kind(PEAK_KIND, 0, lambda rng: good_batch(rng, max_batch_files)),
        Kind("mixed /predict/batch", 8, mixed_batch),
        Kind("empty file", 3, single(bad["empty"])),
        Kind("not an image", 3, single(bad["not_an_image"])),
        Kind("truncated JPEG", 3, single(bad["corrupt"])),
        Kind("decompression bomb", 3, single(bad["too_many_pixels"])),
        Kind("file over upload limit", 3, single(bad["file_too_large"])),
        Kind(
            "body over limit (declared)",
            2,
            lambda rng: error_request(
                "POST", "/predict", "request_too_large", files={"file": ("huge.bin", big_body)}
            ),
        ),
        Kind(
            "body over limit (chunked)",
            2,
            lambda rng: error_request(
                "POST",
                "/predict",
                "request_too_large",
                content=chunked(streamed),
                headers={"content-type": streamed_type},
            ),
        ),
        Kind(
            "too many files",
            2,
            lambda rng: error_request(
                "POST",
                "/predict/batch",
                "too_many_files",
                files=[("files", (tiny.name, tiny.data))] * (max_batch_files + 1),
            ),
        ),
        Kind("no body", 2, lambda rng: error_request("POST", "/predict", "missing_field")),
        Kind(
            "wrong field name",
            3,
            lambda rng: error_request(
                "POST", "/predict", "missing_field", files={"image": (tiny.name, tiny.data)}
            ),
        ),
        Kind(
            "field sent as text",
            2,
            lambda rng: error_request("POST", "/predict", "invalid_field", data={"file": "ba.png"}),
        ),
        Kind(
            "broken multipart",
            3,
            lambda rng: error_request(
                "POST",
                "/predict",
                "malformed_body",
                content=garbage,
                headers={"content-type": "multipart/form-data; boundary=XyZ"},
            ),
        ),
        Kind(
            "multipart without boundary",
            2,
            lambda rng: error_request(
                "POST",
                "/predict/batch",
                "malformed_body",
                content=tiny.data,
                headers={"content-type": "multipart/form-data"},
            ),
        ),
        Kind("unknown path", 1, lambda rng: error_request("GET", "/predictions", "not_found")),
        Kind("wrong method", 1, lambda rng: error_request("GET", "/predict", "method_not_allowed")),
    ]


def problems(request: Request, response: httpx.Response) -> tuple[list[str], int]:
    """What is wrong with ``response`` (empty if nothing), and how many good crops it got wrong."""
    if response.status_code != request.status:
        return [f"status {response.status_code}, expected {request.status}: {response.text[:200]}"], 0
    try:
        body = response.json()
    except ValueError:
        return [f"answer is not JSON: {response.text[:200]}"], 0
    if request.code is not None:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or error.get("code") != request.code or not error.get("message"):
            return [f"expected error code {request.code!r}, got {json.dumps(body)[:200]}"], 0
        return [], 0
    assert request.labels is not None
    answers = [body] if request.path == "/predict" else body.get("results", [])
    if len(answers) != len(request.labels):
        return [f"{len(answers)} results for {len(request.labels)} uploads"], 0
    found, wrong = [], 0
    for index, (answer, expected) in enumerate(zip(answers, request.labels, strict=True)):
        if isinstance(expected, BadFile):
            code = (answer.get("error") or {}).get("code")
            if answer.get("status") != "error" or code != expected.code:
                found.append(
                    f"entry {index}: expected error {expected.code!r}, got {json.dumps(answer)[:160]}"
                )
        elif answer.get("label") != expected:
            wrong += 1
            found.append(f"entry {index}: answered {answer.get('label')!r}, true class {expected!r}")
    return found, wrong


# ---------------------------------------------------------------- load


@dataclass
class Tally:
    """Everything the clients saw, merged across them."""

    requests: int = 0
    images: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    wrong_answers: int = 0
    by_kind: dict[str, dict[str, Any]] = field(
        default_factory=lambda: defaultdict(lambda: {"requests": 0, "failures": 0, "latencies": []})
    )
    examples: list[str] = field(default_factory=list)


@dataclass
class Schedule:
    """When the clients stop: unknown until warm-up is over, so the measured part is always full length."""

    clients: int
    deadline: float = float("inf")
    openings_answered: int = 0
    warm: asyncio.Event = field(default_factory=asyncio.Event)

    def opening_answered(self) -> None:
        self.openings_answered += 1
        if self.openings_answered == self.clients:
            self.warm.set()


async def client_loop(
    base_url: str, kinds: list[Kind], seed: int, schedule: Schedule, tally: Tally, timeout: float
) -> None:
    """One keep-alive connection sending requests back to back until the schedule's deadline.

    Every client opens with the largest batch, so the server meets its peak
    (all clients at the biggest shape at once) during warm-up: memory kept
    after that peak belongs in the baseline, and only what grows afterwards
    counts as growth.
    """
    rng = random.Random(seed)
    weights = [k.weight for k in kinds]
    opening = next(k for k in kinds if k.name == PEAK_KIND)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        first = True
        while time.monotonic() < schedule.deadline:
            kind = opening if first else rng.choices(kinds, weights)[0]
            if first:
                first = False
                # Counted however it ends: a failed opening is a failure below, not a stalled warm-up.
                finish = schedule.opening_answered
            else:
                finish = None
            request = kind.make(rng)
            stats = tally.by_kind[kind.name]
            stats["requests"] += 1
            tally.requests += 1
            started = time.perf_counter()
            try:
                response = await client.request(request.method, request.path, **request.kwargs)
            except httpx.TransportError as exc:  # connection refused/reset, protocol error, timeout
                if finish:
                    finish()
                tally.transport_errors[type(exc).__name__] += 1
                stats["failures"] += 1
                if len(tally.examples) < 20:
                    tally.examples.append(f"{kind.name}: {type(exc).__name__}: {exc}")
                continue
            if finish:
                finish()
            stats["latencies"].append(time.perf_counter() - started)
            tally.by_status[response.status_code] += 1
            found, wrong = problems(request, response)
            tally.wrong_answers += wrong
            if found:
                stats["failures"] += 1
                if len(tally.examples) < 20:
                    tally.examples.append(f"{kind.name}: {found[0]}")
            elif request.status == 200:
                tally.images += request.images


async def sample_rss(server: Server, started: float, every: float, samples: list[tuple[float, int]]) -> None:
    while True:
        samples.append((round(time.monotonic() - started, 2), server.rss_bytes()))
        await asyncio.sleep(every)


async def drive(server: Server, kinds: list[Kind], args: argparse.Namespace) -> tuple[Tally, dict]:
    """Warm-up (``args.warmup`` seconds, and every client's opening batch answered), then ``args.seconds``."""
    tally = Tally()
    schedule = Schedule(args.clients)
    samples: list[tuple[float, int]] = []
    rss_at_ready = server.rss_bytes()
    started = time.monotonic()
    sampler = asyncio.create_task(sample_rss(server, started, 0.5, samples))
    clients = [
        asyncio.create_task(client_loop(server.base_url, kinds, args.seed + i, schedule, tally, args.timeout))
        for i in range(args.clients)
    ]
    await asyncio.sleep(args.warmup)
    await schedule.warm.wait()
    warm_at = time.monotonic()
    schedule.deadline = warm_at + args.seconds
    rss_after_warmup = server.rss_bytes()
    requests_after_warmup = tally.requests
    await asyncio.gather(*clients)
    sampler.cancel()
    elapsed = time.monotonic() - started
    rss_end = server.rss_bytes()
    peak = max([rss for _, rss in samples] + [rss_end])
    return tally, {
        "elapsed_s": round(elapsed, 2),
        "warmup_s": round(warm_at - started, 2),
        "measured_s": round(time.monotonic() - warm_at, 2),
        "requests_after_warmup": tally.requests - requests_after_warmup,
        "rss_at_ready_mib": round(rss_at_ready / 2**20, 1),
        "rss_after_warmup_mib": round(rss_after_warmup / 2**20, 1),
        "rss_end_mib": round(rss_end / 2**20, 1),
        "rss_peak_mib": round(peak / 2**20, 1),
        "rss_growth_pct": round(100 * (rss_end - rss_after_warmup) / rss_after_warmup, 2),
        "rss_samples_mib": [(t, round(rss / 2**20, 1)) for t, rss in samples],
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# ---------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured load after warm-up")
    parser.add_argument("--warmup", type=float, default=5.0, help="load before the RSS baseline is taken")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    parser.add_argument("--max-upload-bytes", type=int, default=MAX_UPLOAD_BYTES)
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args(argv)

    crops, left_out = load_crops(args.max_upload_bytes)
    max_batch_files = 64
    kinds = build_kinds(crops, args.max_upload_bytes, max_batch_files)
    env = {
        "LPR_MAX_UPLOAD_BYTES": str(args.max_upload_bytes),
        "LPR_MAX_BATCH_FILES": str(max_batch_files),
        "LPR_ACCESS_LOG": "false",
        "LPR_LOG_LEVEL": "info",  # start-up and shutdown lines only: the access log is off
        "LPR_WORKERS": "1",  # RSS is read from the one serving process
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.out.with_name(args.out.stem + "-server.log")
    load_before = os.getloadavg()
    with running(env, log_path=log_path, port=args.port or None) as server:
        tally, run = asyncio.run(drive(server, kinds, args))
        alive = server.process.poll() is None
    exit_status = server.process.returncode
    log = server.log()

    five_xx = sum(n for status, n in tally.by_status.items() if status >= 500)
    expectation_failures = sum(s["failures"] for s in tally.by_kind.values()) - sum(
        tally.transport_errors.values()
    )
    criteria = {
        "no 5xx": five_xx == 0,
        "no connection errors or timeouts": not tally.transport_errors,
        "every good crop answered correctly": tally.wrong_answers == 0,
        "every request answered as documented": expectation_failures == 0,
        f"RSS growth < {RSS_GROWTH_LIMIT:.0%}": run["rss_growth_pct"] < 100 * RSS_GROWTH_LIMIT,
        "server alive until SIGTERM": alive,
        "exit status 0 after SIGTERM": exit_status == 0,
        "no traceback in the server log": "Traceback" not in log,
    }
    kinds_report = {
        name: {
            "requests": s["requests"],
            "failures": s["failures"],
            "p50_ms": round(percentile(s["latencies"], 50) * 1000, 2),
            "p99_ms": round(percentile(s["latencies"], 99) * 1000, 2),
        }
        for name, s in sorted(tally.by_kind.items(), key=lambda item: -item[1]["requests"])
    }
    result = {
        "settings": {
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "clients": args.clients,
            "seed": args.seed,
            "server_env": env,
            "good_crops": len(crops),
            "crops_left_out": left_out,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "requests": tally.requests,
        "requests_per_s": round(tally.requests / run["elapsed_s"], 1),
        "good_images": tally.images,
        "good_images_per_s": round(tally.images / run["elapsed_s"], 1),
        "by_status": {str(k): v for k, v in sorted(tally.by_status.items())},
        "5xx": five_xx,
        "transport_errors": dict(tally.transport_errors),
        "wrong_answers": tally.wrong_answers,
        "expectation_failures": expectation_failures,
        "examples": tally.examples,
        **run,
        "exit_status": exit_status,
        "kinds": kinds_report,
        "criteria": criteria,
        "passed": all(criteria.values()),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0 if result["passed"] else 1


def print_report(result: dict) -> None:
    settings, machine = result["settings"], result["machine"]
    left_out = len(settings["crops_left_out"])
    print(
        f"soak: {settings['clients']} clients, warm-up {result['warmup_s']:g} s "
        f"(at least {settings['warmup_s']:g} s) + {result['measured_s']:g} s measured; "
        f"{settings['good_crops']} good crops ({left_out} left out: misclassified in-process)"
    )
    print(f"machine: {machine['cpus']} CPUs, load average before {machine['loadavg_before']}\n")
    print(f"{'request kind':<30} {'requests':>9} {'failures':>9} {'p50 ms':>9} {'p99 ms':>9}")
    for name, k in result["kinds"].items():
        print(f"{name:<30} {k['requests']:>9} {k['failures']:>9} {k['p50_ms']:>9.2f} {k['p99_ms']:>9.2f}")
    print()
    rows = [
        ("requests", f"{result['requests']} in {result['elapsed_s']} s ({result['requests_per_s']}/s)"),
        ("good crops classified", f"{result['good_images']} ({result['good_images_per_s']}/s)"),
        ("by status", ", ".join(f"{k}: {v}" for k, v in result["by_status"].items())),
        ("5xx", result["5xx"]),
        ("connection errors/timeouts", dict(result["transport_errors"]) or 0),
        ("wrong answers (good crops)", result["wrong_answers"]),
        ("not answered as documented", result["expectation_failures"]),
        (
            "server RSS (MiB)",
            f"{result['rss_at_ready_mib']} at ready, {result['rss_after_warmup_mib']} after warm-up -> "
            f"{result['rss_end_mib']} at end "
            f"({result['rss_growth_pct']:+.2f} %), peak {result['rss_peak_mib']}",
        ),
        ("exit status after SIGTERM", result["exit_status"]),
    ]
    for label, value in rows:
        print(f"{label:<30} {value}")
    for example in result["examples"][:10]:
        print(f"  e.g. {example}")
    print()
    for name, ok in result["criteria"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    sys.exit(main())
