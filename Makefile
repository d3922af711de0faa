# Two commands do all set-up on a fresh machine:
#   make serve   - the service on 127.0.0.1:8000 with the shipped model
#   make test    - the whole test suite (installs the training extra too)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: serve test lint bench wrk soak train evaluate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files re-run the install whenever pyproject.toml changes.
$(VENV)/.serve-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[train,test]"
	touch $@ $(VENV)/.serve-installed

serve: $(VENV)/.serve-installed
	LPR_HOST=$(HOST) LPR_PORT=$(PORT) $(BIN)/python -m service

test: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Model level (ONNX Runtime vs Keras), then HTTP level (wrk against `python -m service`).
bench: $(VENV)/.dev-installed wrk
	$(BIN)/python -m bench.model_bench
	$(BIN)/python -m bench.http_bench --repeat 3

# wrk is a Debian package: installed here when missing and we may (root with apt-get).
wrk:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } || \
		{ echo "wrk is missing: install the Debian package wrk" >&2; exit 1; }

# 60 s at 32 clients, good crops and malformed uploads mixed (a 10 s version runs in `make test`).
soak: $(VENV)/.dev-installed
	$(BIN)/python -m bench.soak

train: $(VENV)/.dev-installed
	$(BIN)/lpr-train train --data ../shared/data/lpr --arch compact-ink16 --out runs/compact-ink16

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
