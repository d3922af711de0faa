"""The container recipe checked against the code, since no Docker engine runs here.

Each test reads the Dockerfile, .dockerignore or docker-compose.yml and checks
a fact the image depends on: the module it starts, the files it copies, the
port it exposes, the settings it passes. The slow test installs the serving
dependencies exactly as the Dockerfile does, in a fresh virtual environment,
and starts the app from them.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SAMPLES
from test_server import free_port

from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, locate
from service.config import Settings

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Instruction:
    stage: str
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined, tagged by build stage."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    instructions, stage = [], ""
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else parts[0]
        instructions.append(Instruction(stage, keyword, args.strip()))
    return instructions


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text())
STAGES = [i.args.split()[-1] for i in INSTRUCTIONS if i.keyword == "FROM"]


def stage_chain(target: str) -> list[Instruction]:
    """Instructions that build ``target``, following ``FROM <earlier stage>``."""
    own = [i for i in INSTRUCTIONS if i.stage == target]
    parent = own[0].args.split()[0]
    return (stage_chain(parent) if parent in STAGES else []) + own


def exec_form(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def copy_sources(target: str) -> list[str]:
    sources = []
    for instruction in stage_chain(target):
        if instruction.keyword == "COPY":
            parts = [p for p in shlex.split(instruction.args) if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def image_env(stage: list[Instruction]) -> dict[str, str]:
    """The ``ENV KEY=VALUE ...`` settings of a stage."""
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(instruction.args))
    return env


def test_service_image_is_slim_python_and_the_default_target() -> None:
    """`docker build .` builds the service (the last stage), on the slim Python the project targets."""
    assert STAGES[-1] == "serve"
    base = next(i for i in INSTRUCTIONS if i.keyword == "FROM").args.split()[0]
    assert base == "python:3.11-slim"


def test_service_image_copies_what_the_service_imports_and_the_shipped_model() -> None:
    sources = copy_sources("serve")
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    for needed in ("pyproject.toml", "README.md", "lpr/", "service/"):
        assert needed in sources
    assert "training/" not in sources, "the serving image must not carry the training package"
    # The model the service loads by default (every version of it), the float32 twin
    # LPR_MODEL_NAME=lpr-default switches to,
    # and the plate detector that /read-plate runs first.
    for name in (Settings().model_name, DEFAULT_MODEL, Settings().detector_name):
        assert f"models/{name}/" in sources, f"the image must ship models/{name}/"
        assert locate(DEFAULT_REPOSITORY, name).onnx.is_file()

    # Every project module the app imports lies under a copied folder, and TensorFlow is not among them.
    probe = (
        "import sys, json, service.main; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lpr', 'service', 'training', 'tensorflow', 'keras'))))"
    )
    modules = json.loads(subprocess.check_output([sys.executable, "-c", probe], cwd=ROOT, text=True))
    assert not [m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "training")]
    for module in modules:
        assert any(module.split(".")[0] + "/" == source for source in sources), module


def test_no_tensorflow_import_anywhere_in_the_service() -> None:
    """The serving image has no TensorFlow; one stray import would crash it at start-up."""
    for path in (ROOT / "service").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in ("tensorflow", "keras", "tf2onnx"), f"{path}: imports {name}"


def test_dockerignore_lets_every_copied_file_through() -> None:
    """An allow-list .dockerignore that forgot a file would break the build only on a Docker host."""
    patterns = [
        p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")
    ]

    def included(path: str) -> bool:
        verdict = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                verdict = negate
        return verdict

    for source in copy_sources("serve") + copy_sources("train"):
        assert included(source.rstrip("/")), f".dockerignore excludes {source}"
    assert not included(".venv") and not included("runs")


def test_service_stage_installs_serving_dependencies_only_and_runs_as_non_root() -> None:
    serve = [i for i in INSTRUCTIONS if i.stage == "serve"]
    installs = [i.args for i in serve if i.keyword == "RUN" and "pip install" in i.args]
    assert installs == ["pip install --no-cache-dir ."]
    users = [i.args for i in serve if i.keyword == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_image_starts_the_app_on_the_exposed_port_and_checks_health() -> None:
    """The command names a real ASGI app, on the port the image exposes, probed on a real route."""
    serve = [i for i in INSTRUCTIONS if i.stage == "serve"]
    command = exec_form([i for i in serve if i.keyword == "CMD"][-1].args)
    assert command == ["python", "-m", "service"]
    env = image_env(serve)
    port = env["LPR_PORT"]
    assert env["LPR_HOST"] == "0.0.0.0"
    assert [i.args for i in serve if i.keyword == "EXPOSE"] == [port]
    assert port == str(Settings.model_fields["port"].default)

    from service.main import app

    paths = {route.path for route in app.routes if hasattr(route, "path")}
    openapi_paths = set(app.openapi()["paths"])
    healthcheck = [i.args for i in serve if i.keyword == "HEALTHCHECK"][-1]
    assert f"http://127.0.0.1:{port}/health" in healthcheck
    assert "/health" in openapi_paths | paths
    assert "curl" not in healthcheck and "wget" not in healthcheck  # slim images have neither


def test_compose_service_matches_the_image_and_the_settings() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    lpr = compose["services"]["lpr"]
    assert lpr["build"]["target"] == "serve"
    exposed = next(i.args for i in INSTRUCTIONS if i.stage == "serve" and i.keyword == "EXPOSE")
    assert any(str(mapping).split(":")[-1] == exposed for mapping in lpr["ports"])
    known = {f"LPR_{name.upper()}" for name in Settings.model_fields}
    assert set(lpr["environment"]) <= known, "docker-compose.yml sets an LPR_ variable the service ignores"
    Settings(**{k[4:].lower(): v for k, v in lpr["environment"].items()})  # values parse
    assert f"127.0.0.1:{exposed}/health" in " ".join(lpr["healthcheck"]["test"])


def test_compose_train_profile_runs_the_training_cli_on_the_mounted_dataset() -> None:
    from training.cli import _parser

    train = yaml.safe_load(COMPOSE.read_text())["services"]["train"]
    assert train["profiles"] == ["train"]
    target = train["build"]["target"]
    assert target in STAGES
    assert any(
        i.keyword == "RUN" and 'pip install --no-cache-dir ".[train]"' in i.args for i in stage_chain(target)
    )
    mounts = {v.split(":")[1]: v.split(":")[0] for v in train["volumes"]}
    assert mounts["/data"] == "../shared/data" and mounts["/runs"] == "./runs", "the data home: every source"
    args = _parser().parse_args(train["command"])
    # It retrains the shipped model's recipe.
    shipped = json.loads(locate(DEFAULT_REPOSITORY, DEFAULT_MODEL).metadata.read_text())["architecture"]
    assert (args.command, args.data, args.arch, args.out) == ("train", "/data", shipped, "/runs")


@pytest.mark.slow
def test_serving_dependencies_alone_start_the_app(tmp_path: Path) -> None:
    """Install the project as the image does, from only the files it copies, and serve from it.

    Proves the serving install is complete without TensorFlow (pip's cache keeps this quick).
    """
    context = tmp_path / "app"
    context.mkdir()
    for source in copy_sources("serve"):
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, context / source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LPR_", "PYTHON", "VIRTUAL_ENV"))}
    # The Dockerfile's `pip install --no-cache-dir .`, keeping pip's cache (speed) and skipping the
    # .pyc compilation (a third of the time; it changes no installed file list).
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "."],
        cwd=context,
        env=env,
        check=True,
        timeout=600,
    )
    no_tf = subprocess.run(
        [str(python), "-c", "import tensorflow"], cwd=context, env=env, capture_output=True
    )
    assert no_tf.returncode != 0, "tensorflow is importable in the serving install"

    serve = [i for i in INSTRUCTIONS if i.stage == "serve"]
    command = exec_form([i for i in serve if i.keyword == "CMD"][-1].args)
    port = free_port()
    process = subprocess.Popen(
        [str(venv / "bin" / command[0]), *command[1:]],
        cwd=context,
        env={**env, **image_env(serve), "LPR_HOST": "127.0.0.1", "LPR_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                    status = response.status
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert status == 200, "app from the serving-only install never became ready"
        boundary = "x" * 16
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="ba.png"\r\n\r\n'.encode()
            + (SAMPLES / "ba.png").read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["label"] == "ba"
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode(errors="replace")
    assert "Traceback" not in output, output
