# Two commands do all set-up on a fresh machine:
#   make serve   - the service on 127.0.0.1:8000 with the shipped model
#   make test    - the whole test suite (installs the training extra and the Debian packages it needs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
DATA   ?= ../shared/data

.PHONY: serve test lint bench soak train examples system-test system-train system-bench clean

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

# Debian packages (fonts, chromium, wrk): installed when missing and we are root with apt-get,
# otherwise named, and the target fails (scripts/system-packages.sh).
system-test system-train system-bench: system-%:
	@scripts/system-packages.sh $*

serve: $(VENV)/.serve-installed
	LPR_HOST=$(HOST) LPR_PORT=$(PORT) $(BIN)/python -m service

test: system-test $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Model level (ONNX Runtime vs Keras), photos (read against a full decode), then HTTP level
# (wrk against `python -m service`).
bench: system-bench $(VENV)/.dev-installed
	$(BIN)/python -m bench.model_bench
	$(BIN)/python -m bench.photo_bench
	$(BIN)/python -m bench.http_bench --repeat 3

# 60 s at 32 clients, good crops and malformed uploads mixed (an 8 s version runs in `make test`).
soak: $(VENV)/.dev-installed
	$(BIN)/python -m bench.soak

# Retrains the shipped recipe (lpr-train's default) into runs/; docs/training.md ships it.
train: system-train $(VENV)/.dev-installed
	$(BIN)/lpr-train train --data $(DATA) --out runs/shipped

# Re-reads the README's and the OpenAPI schema's example answers from the running service.
examples: $(VENV)/.dev-installed
	$(BIN)/python scripts/examples.py --write

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
