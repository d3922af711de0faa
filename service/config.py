"""Service settings, read once from ``LPR_*`` environment variables.

Every knob an operator may need in production lives here, so the README's
configuration table, the Dockerfile and the code cannot drift apart.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lpr.char_finder import FINDER_MODEL
from lpr.detection import DETECTOR_MODEL
from lpr.letter_namer import LETTER_MODEL
from lpr.model import ModelLoadError
from lpr.repository import SERVED_MODEL, locate

#: The checkout (or, once installed, the folder holding the ``service`` package).
#: Relative paths fall back to it so ``pytest`` and ``make serve`` work from anywhere.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Runtime configuration; each field ``FOO`` is set by ``LPR_FOO``."""

    model_config = SettingsConfigDict(env_prefix="LPR_", extra="ignore", protected_namespaces=())

    model_repository: Path = Field(
        Path("models"),
        description=(
            "Model repository, laid out <name>/<version>/model.onnx + model.json; relative paths are "
            "tried against the working directory, then the checkout."
        ),
    )
    model_name: str = Field(SERVED_MODEL, description="Model to serve from the repository.")
    model_version: str | None = Field(
        None, description="Version of the model to serve; unset = the newest in the repository."
    )
    model_path: Path | None = Field(
        None, description="An ONNX file to serve instead of the repository's (its metadata beside it)."
    )
    metadata_path: Path | None = Field(
        None, description="Metadata JSON for LPR_MODEL_PATH; defaults to the model path with a .json suffix."
    )
    detector_name: str = Field(
        DETECTOR_MODEL,
        description="Plate detector that /read-plate runs on every image, from the repository.",
    )
    detector_version: str | None = Field(
        None, description="Version of the plate detector; unset = the newest in the repository."
    )
    finder_name: str = Field(
        FINDER_MODEL,
        description="Character finder that /read-plate reads every plate with, from the repository.",
    )
    finder_version: str | None = Field(
        None, description="Version of the character finder; unset = the newest in the repository."
    )
    letters_name: str = Field(
        LETTER_MODEL,
        description="Letter model that /read-plate names zone and class letters with, from the repository.",
    )
    letters_version: str | None = Field(
        None, description="Version of the letter model; unset = the newest in the repository."
    )
    max_batch_files: int = Field(64, ge=1, description="Most files accepted by one /predict/batch request.")
    max_upload_bytes: int = Field(5 * MIB, ge=1, description="Largest single image accepted, in bytes.")
    max_pixels: int = Field(
        16_000_000,
        ge=1,
        description="Most pixels an image may declare (width x height); bounds memory against bombs.",
    )
    max_photo_bytes: int = Field(
        25 * MIB,
        ge=1,
        description=(
            "Largest photo /read-plate accepts, in bytes: a phone's full-size JPEG (12 MP: 3-8 MB, "
            "up to 20 MB for a busy 24 MP scene). The crop routes keep LPR_MAX_UPLOAD_BYTES."
        ),
    )
    max_photo_pixels: int = Field(
        25_000_000,
        ge=1,
        description=(
            "Most pixels a /read-plate photo may declare: a 24 MP camera's pass. A JPEG is decoded "
            "reduced, but any other format whole, so this bounds a photo's memory (about 6 bytes a "
            "pixel at the peak). The crop routes keep LPR_MAX_PIXELS."
        ),
    )
    linger_seconds: float = Field(
        10.0,
        ge=0.0,
        description=(
            "Lingering close: how long a body refused with 413 is still read (and dropped) before a "
            "connection the client asked to close is closed, so a client still sending gets the 413 "
            "instead of a connection reset."
        ),
    )
    linger_bytes: int = Field(
        64 * MIB,
        ge=0,
        description="Lingering close: most bytes of a refused body read and dropped before that close.",
    )
    intra_op_threads: int = Field(
        1, ge=0, description="ONNX Runtime threads inside one inference (0 lets ONNX Runtime choose)."
    )
    inter_op_threads: int = Field(
        1, ge=0, description="ONNX Runtime threads across graph branches (0 lets ONNX Runtime choose)."
    )
    inference_chunk: int = Field(
        8,
        ge=0,
        description=(
            "Images per ONNX Runtime call within a batch request; while one chunk runs, the next is "
            "preprocessed on another core. 0 = the whole batch in one call."
        ),
    )
    batching: bool = Field(
        True,
        description=(
            "Dynamic batching: concurrent /predict requests share one ONNX Runtime run. "
            "false = every image runs alone (same inference thread)."
        ),
    )
    fast_lane: bool = Field(
        True,
        description=(
            "Serve POST /predict straight from ASGI (service/fastlane.py), past FastAPI's routing and "
            "dependencies; same answers, about 0.3 ms less per request. false = through FastAPI."
        ),
    )
    batch_max_size: int = Field(32, ge=1, description="Most images one dynamic batch holds.")
    batch_max_wait_ms: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description=(
            "How long a dynamic batch is held open for requests already being received; a lone "
            "client never waits. 0 = only batch what is already queued."
        ),
    )
    host: str = Field("127.0.0.1", description="Interface uvicorn binds to (0.0.0.0 in the container).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port uvicorn listens on.")
    workers: int = Field(1, ge=1, description="uvicorn worker processes; each loads its own model copy.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Log level of the service and uvicorn."
    )
    access_log: bool = Field(
        False,
        description=(
            "Whether uvicorn logs one line per request. Off by default, as in gunicorn: /metrics "
            "counts every request by endpoint and status, and a log line costs time on the hot path."
        ),
    )
    graceful_timeout: int = Field(
        8,
        ge=1,
        description=(
            "Seconds a SIGTERM waits for requests in flight before cancelling them; keep it under the "
            "orchestrator's kill delay (docker stop: 10 s, docker-compose.yml: 15 s, Kubernetes: 30 s)."
        ),
    )

    api_keys: SecretStr | None = Field(
        None,
        description=(
            "Comma-separated API keys; when set (or LPR_API_KEYS_FILE), every route but the probes, "
            "/metrics, the docs and the page needs one (Authorization: Bearer <key> or X-API-Key)."
        ),
    )
    api_keys_file: Path | None = Field(
        None, description="A file of API keys, one per line (# comments allowed), e.g. a mounted Secret."
    )
    rate_limit: float | None = Field(
        None,
        gt=0,
        description=(
            "Requests per second allowed per API key (per client address when keys are off), on the "
            "routes that need a key; a batch counts as its number of files. Unset: no limit."
        ),
    )
    rate_burst: int | None = Field(
        None,
        ge=1,
        description="Requests a key may send at once before the rate applies (default: 1 s worth).",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text or as one JSON object per line (access log included)."
    )

    def api_key_list(self) -> list[str]:
        """Every configured key: ``LPR_API_KEYS`` and the lines of ``LPR_API_KEYS_FILE``."""
        keys = self.api_keys.get_secret_value().split(",") if self.api_keys else []
        if self.api_keys_file is not None:
            keys += [line for line in self.api_keys_file.read_text().splitlines() if not line.startswith("#")]
        return [key.strip() for key in keys if key.strip()]

    @property
    def burst(self) -> int:
        """The rate limiter's bucket size: ``LPR_RATE_BURST``, or one second's worth of requests."""
        return self.rate_burst or max(1, math.ceil(self.rate_limit or 1))

    def resolve(self, path: Path) -> Path:
        """Absolute path for ``path``: as given if it exists from the cwd, else under the checkout.

        The container and ``make serve`` run from the project root, but tests and
        ad-hoc scripts may not; trying both keeps the default working everywhere.
        """
        if path.is_absolute():
            return path
        from_cwd = Path.cwd() / path
        if from_cwd.exists():
            return from_cwd.resolve()
        from_package = PACKAGE_ROOT / path
        return from_package.resolve() if from_package.exists() else from_cwd.resolve()

    def model_files(self) -> tuple[Path, Path]:
        """The ONNX file and metadata to serve: ``LPR_MODEL_PATH`` if set, else from the repository."""
        if self.model_path is not None:
            model = self.resolve(self.model_path)
            metadata = self.resolve(self.metadata_path) if self.metadata_path else model.with_suffix(".json")
            return model, metadata
        try:
            files = locate(self.resolve(self.model_repository), self.model_name, self.model_version)
        except FileNotFoundError as exc:
            raise ModelLoadError(
                f"{exc}; set LPR_MODEL_REPOSITORY, LPR_MODEL_NAME or LPR_MODEL_PATH"
            ) from exc
        return files.onnx, files.metadata

    def _located(self, name: str, version: str | None, setting: str) -> tuple[Path, Path]:
        """A model's ONNX file and metadata from the repository; a miss names the setting to change."""
        try:
            files = locate(self.resolve(self.model_repository), name, version)
        except FileNotFoundError as exc:
            raise ModelLoadError(f"{exc}; set LPR_MODEL_REPOSITORY or {setting}") from exc
        return files.onnx, files.metadata

    def detector_files(self) -> tuple[Path, Path]:
        """The plate detector's ONNX file and metadata, from the repository."""
        return self._located(self.detector_name, self.detector_version, "LPR_DETECTOR_NAME")

    def finder_files(self) -> tuple[Path, Path]:
        """The character finder's ONNX file and metadata, from the repository."""
        return self._located(self.finder_name, self.finder_version, "LPR_FINDER_NAME")

    def letters_files(self) -> tuple[Path, Path]:
        """The letter model's ONNX file and metadata, from the repository."""
        return self._located(self.letters_name, self.letters_version, "LPR_LETTERS_NAME")

    @property
    def max_batch_body_bytes(self) -> int:
        """Largest /predict/batch body: every allowed file at its largest, plus multipart framing."""
        return self.max_batch_files * (self.max_upload_bytes + MULTIPART_OVERHEAD)

    @property
    def max_single_body_bytes(self) -> int:
        """Largest /predict body: one file at the limit plus multipart framing."""
        return self.max_upload_bytes + MULTIPART_OVERHEAD

    @property
    def max_photo_body_bytes(self) -> int:
        """Largest /read-plate body: one photo at its limit plus multipart framing."""
        return self.max_photo_bytes + MULTIPART_OVERHEAD


#: Room for boundaries and part headers around each file (a long file name fits easily).
MULTIPART_OVERHEAD = 8 * 1024
