# syntax=docker/dockerfile:1
# Two targets:
#   serve (default): the HTTP service, ONNX Runtime only - no TensorFlow.
#   train:           lpr-train with the [train] extra, for `docker compose --profile train`.

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# pyproject.toml names README.md as the readme, so the build needs it too. lpr/ is the core
# both targets share; each target adds only its own package.
COPY pyproject.toml README.md ./
COPY lpr/ lpr/

FROM base AS train
COPY training/ training/
RUN pip install --no-cache-dir ".[train]"
ENV HOME=/tmp
ENTRYPOINT ["lpr-train"]
CMD ["train", "--data", "/data", "--out", "/runs"]

FROM base AS serve
# Serving dependencies only: the project without extras, and no training/ package.
COPY service/ service/
RUN pip install --no-cache-dir .
# The model repository's served model (int8) and its float32 twin (LPR_MODEL_NAME=lpr-default).
COPY models/lpr-default-int8/ models/lpr-default-int8/
COPY models/lpr-default/ models/lpr-default/
# The plate detector /read-plate runs on every image (photos and tight crops alike), and the
# character finder that reads every plate it finds.
COPY models/plate-detector/ models/plate-detector/
COPY models/char-finder/ models/char-finder/
# The letter model that names the zone and class letters of every plate read.
COPY models/plate-letters/ models/plate-letters/
RUN useradd --system --uid 10001 --no-create-home lpr
USER lpr
EXPOSE 8000
# slim has no curl; the interpreter is already there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
# `python -m service` runs uvicorn with every LPR_* setting (workers, graceful timeout, batching)
# and exits 0 on SIGTERM once requests in flight have drained.
ENV LPR_HOST=0.0.0.0 LPR_PORT=8000
CMD ["python", "-m", "service"]
