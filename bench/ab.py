"""A/B speed of two or more server configurations, interleaved round by round.

``make bench`` measures each configuration in a few long rounds; on a shared
2-core machine whose speed drifts by 20-30 % from minute to minute, that
cannot resolve a difference of a few percent. Here every round runs each
configuration once, in alternating order, with short wrk runs (``/predict``
at 1 and 32 connections, ``/predict/batch`` with 64 crops), and the medians
over many rounds are compared as ratios to the first configuration.

    .venv/bin/python -m bench.ab keys                       # API keys + rate limit vs open (issue 14)
    .venv/bin/python -m bench.ab checkout ../before         # this checkout vs another one, and the floor
    .venv/bin/python -m bench.ab keys --rounds 8 --seconds 6

Writes ``bench/results/ab-<comparison>.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import http_bench as hb
from bench import server as servers


@dataclass
class Config:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    checkout: Path = servers.ROOT
    floor: bool = False  # bench/floor_app.py instead of the service


def measure(config: Config, payloads: hb.Payloads, seconds: float, log: Path) -> dict[str, float]:
    def run(base: str) -> dict[str, float]:
        hb.wrk(f"{base}/predict", payloads.single, payloads, 4, 2)  # warm-up
        one = hb.wrk(f"{base}/predict", payloads.single, payloads, 1, seconds)
        many = hb.wrk(f"{base}/predict", payloads.single, payloads, 32, seconds)
        batch = hb.wrk(f"{base}/predict/batch", payloads.batch, payloads, 1, seconds)
        errors = sum(sum(r["errors"].values()) for r in (one, many, batch))
        if errors:
            raise SystemExit(f"{config.name}: {errors} errors (non-2xx or socket) in a run")
        return {
            "p50_ms_1": one["p50_ms"],
            "requests_per_s_32": many["requests_per_s"],
            "batch_images_per_s": round(batch["requests_per_s"] * hb.BATCH, 1),
        }

    if not config.floor:
        with servers.running(config.env, log_path=log, checkout=config.checkout) as server:
            return run(server.base_url)
    port = servers.free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--port", str(port), "--no-access-log"]
    process = subprocess.Popen(
        command, cwd=servers.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                return run(base)
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        raise SystemExit("the floor app never answered")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("comparison", choices=["keys", "checkout"])
    parser.add_argument(
        "other", nargs="?", type=Path, help="with 'checkout': the checkout to compare against"
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args(argv)
    if args.comparison == "keys":
        configs = [Config("open"), Config("keys + rate limit", hb.KEYS_ENV)]
    else:
        if args.other is None:
            parser.error("'checkout' needs the other checkout's path")
        configs = [
            Config("this checkout"),
            Config(f"{args.other}", checkout=args.other.resolve()),
            Config("floor", floor=True),
        ]
    results: dict[str, list[dict[str, float]]] = {c.name: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        payloads = hb.Payloads(Path(tmp), hb.load_crops())
        for index in range(args.rounds):
            order = configs[index % len(configs) :] + configs[: index % len(configs)]
            for config in order:
                results[config.name].append(measure(config, payloads, args.seconds, Path(tmp) / "server.log"))
                print(f"round {index + 1}: {config.name:<22} {results[config.name][-1]}", flush=True)
    metrics = list(results[configs[0].name][0])
    medians = {
        name: {m: statistics.median(r[m] for r in runs) for m in metrics} for name, runs in results.items()
    }
    base = medians[configs[0].name]
    ratios = {name: {m: round(values[m] / base[m], 3) for m in metrics} for name, values in medians.items()}
    print(
        f"\nmedians of {args.rounds} interleaved rounds ({args.seconds:g} s per wrk run), "
        f"and ratios to '{configs[0].name}':"
    )
    print(f"{'configuration':<24}{'p50 ms @1':>12}{'req/s @32':>12}{'batch img/s':>14}   ratios")
    for name, values in medians.items():
        print(
            f"{name:<24}{values['p50_ms_1']:>12.3f}{values['requests_per_s_32']:>12.0f}"
            f"{values['batch_images_per_s']:>14.0f}   {ratios[name]}"
        )
    out = hb.RESULTS / f"ab-{args.comparison}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M %Z"),
                "rounds": results,
                "medians": medians,
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
