"""Scaling: several uvicorn workers behind one port, and replicas behind nginx in docker-compose.yml.

The worker test runs the real server. No Docker engine runs here, so the compose
profile and deploy/nginx.conf are checked against each other and against the
service's settings: the proxy must reach the replicas by their service name on
the port the service listens on, and let through every body the service itself
accepts (or refuses with its own JSON 413).
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ROOT, SAMPLE_CLASSES
from test_server import start_server, wait_until_ready

from service.config import Settings

COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"


def parent_of(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow
def test_two_workers_answer_on_one_port(tmp_path: Path, samples: dict[str, bytes]) -> None:
    """LPR_WORKERS=2: two processes, each with its own model, both serving the one port."""
    log_path = tmp_path / "server.log"
    base, process = start_server(log_path, LPR_WORKERS="2")
    try:
        wait_until_ready(base, process)
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            # A new connection each time: the kernel hands it to whichever worker accepts first.
            response = httpx.get(f"{base}/model", timeout=10)
            if response.status_code == 200:
                pids.add(response.json()["runtime"]["pid"])
            else:
                time.sleep(0.1)  # the second worker is still loading its model
        assert len(pids) == 2, f"only worker {pids} answered"
        assert process.pid not in pids
        assert {parent_of(pid) for pid in pids} == {process.pid}

        for name in SAMPLE_CLASSES:
            with httpx.Client(base_url=base, timeout=10) as client:
                answer = client.post("/predict", files={"file": (f"{name}.png", samples[name], "image/png")})
            assert answer.status_code == 200 and answer.json()["label"] == name

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert "Traceback" not in log_path.read_text()


def compose_services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def size_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit.lower()]


def nginx_directives(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def test_compose_scale_profile_runs_identical_replicas_behind_one_port() -> None:
    services = compose_services()
    single, replica, lb = services["lpr"], services["lpr-replica"], services["lb"]
    assert replica["profiles"] == ["scale"] and lb["profiles"] == ["scale"]
    assert "scale" not in single.get("profiles", []), "plain `docker compose up` still runs one service"

    # The replicas are the single service's container, minus the published port.
    for key in ("build", "image", "command", "healthcheck", "stop_grace_period"):
        assert replica[key] == single[key], key
    assert {k: v for k, v in replica["environment"].items() if k.startswith("LPR_")} == single["environment"]
    assert "ports" not in replica, "replicas publish no port; nginx is the one entry point"
    assert replica["deploy"]["replicas"] >= 2

    # Only nginx publishes a port, and it waits for healthy replicas before resolving their name.
    assert lb["image"].startswith("nginx:")
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in lb["volumes"]}
    assert (ROOT / mounts["/etc/nginx/nginx.conf"]).resolve() == NGINX
    assert lb["depends_on"]["lpr-replica"]["condition"] == "service_healthy"
    host_port = {str(mapping).split(":")[0] for mapping in single["ports"]}
    assert not host_port & {str(mapping).split(":")[0] for mapping in lb["ports"]}, "both may run at once"


def test_compose_command_honours_every_setting_and_drains_before_docker_kills() -> None:
    """`python -m service` (the image's CMD too) reads LPR_HOST/PORT/WORKERS/GRACEFUL_TIMEOUT."""
    single = compose_services()["lpr"]
    assert single["command"] == ["python", "-m", "service"]
    settings = Settings(**{k[4:].lower(): v for k, v in single["environment"].items()})
    assert settings.host == "0.0.0.0"
    assert any(str(mapping).split(":")[-1] == str(settings.port) for mapping in single["ports"])
    assert f"127.0.0.1:{settings.port}/health" in " ".join(single["healthcheck"]["test"])
    grace = int(single["stop_grace_period"].removesuffix("s"))
    assert settings.graceful_timeout < grace, "Docker's SIGKILL would cut the drain short"


def test_nginx_proxies_to_the_replicas_on_the_service_port() -> None:
    services = compose_services()
    conf = nginx_directives(NGINX.read_text())
    settings = Settings(**{k[4:].lower(): v for k, v in services["lpr"]["environment"].items()})

    upstreams = dict(re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", conf))
    proxied = re.findall(r"proxy_pass\s+http://([^/;\s]+)", conf)
    assert proxied and all(name in upstreams for name in proxied)
    servers = re.findall(r"^\s*server\s+([^:\s;]+):(\d+)", upstreams[proxied[0]], re.MULTILINE)
    assert servers == [("lpr-replica", str(settings.port))], "nginx must reach the replicas by service name"

    listen = re.findall(r"listen\s+(\d+)\s*;", conf)
    assert [str(mapping).split(":")[-1] for mapping in services["lb"]["ports"]] == listen

    # Every body the service judges itself (JSON 413 included) gets through nginx.
    (limit,) = re.findall(r"client_max_body_size\s+(\w+)\s*;", conf)
    assert size_bytes(limit) >= settings.max_batch_body_bytes
    # Keep-alive to the replicas needs HTTP/1.1 and an empty Connection header.
    assert "proxy_http_version 1.1;" in conf and 'proxy_set_header Connection "";' in conf
    # A replica stopping (rolling update) refuses connections; nginx retries elsewhere, POSTs included.
    assert re.search(r"proxy_next_upstream\s+[^;]*\berror\b[^;]*\bnon_idempotent\b", conf)
