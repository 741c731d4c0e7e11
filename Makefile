# Two commands matter: `make run` serves the bundled model, `make test` runs the tests.
# Both create .venv and install what they need on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
DATA   ?= ../shared/data
MODEL  ?= models/ser-default.onnx
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test test-container train train-fast train-accurate lint bench-accuracy bench-speed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.service: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[trainer,dev,batch]"
	@touch $@ $(VENV)/.service

# make run MODEL=models/ser-fast.onnx serves the fast model instead.
run: $(VENV)/.service  ## serve the bundled model on http://$(HOST):$(PORT)
	SER_HOST=$${SER_HOST:-$(HOST)} SER_PORT=$${SER_PORT:-$(PORT)} \
	  SER_MODEL_PATH=$${SER_MODEL_PATH:-$(MODEL)} $(BIN)/ser-serve

test: $(VENV)/.dev  ## install the test extras, lint, type-check and run the suite
	$(BIN)/ruff check service trainer tests bench experiments
	$(BIN)/ruff format --check service trainer tests bench experiments
	$(BIN)/mypy
	$(BIN)/python -m pytest

test-container: $(VENV)/.dev  ## build the service image and test it running (needs a Docker API)
	$(BIN)/python -m pytest -m container -p no:cacheprovider

train: $(VENV)/.dev  ## retrain the bundled default model from $(DATA) (all five corpora)
	$(BIN)/ser-train --data-root $(DATA) --protocols loco --out $(MODEL)

train-fast: $(VENV)/.dev  ## retrain the fast model (statistics only) from $(DATA)
	$(BIN)/ser-train --data-root $(DATA) --recipe fast --name ser-fast --protocols loco \
	  --out models/ser-fast.onnx

train-accurate: $(VENV)/.dev  ## retrain the opt-in accurate model (pretrained encoder) from $(DATA)
	$(BIN)/ser-train --data-root $(DATA) --recipe accurate --name ser-accurate \
	  --out models/ser-accurate.onnx

bench-accuracy: $(VENV)/.dev  ## accuracy benchmark (paper recipe, the bundled models, eGeMAPS reference) -> docs/accuracy.*
	$(PIP) install --quiet -e ".[bench]"
	$(BIN)/python -m bench.accuracy --data-root $(DATA) $(BENCH_ACCURACY_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check --fix service trainer tests bench experiments
	$(BIN)/ruff format service trainer tests bench experiments
	$(BIN)/mypy

bench-speed: $(VENV)/.dev  ## stage costs, HTTP load, cold start, paper-style baseline -> docs/performance.md
	$(PIP) install --quiet -e ".[bench]"
	$(BIN)/python -m bench.speed

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
