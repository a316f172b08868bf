# Two commands do everything on a fresh machine: `make compare` and `make test`.
# Every target bootstraps what it needs (virtual environment, model artifacts) by itself.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
ARTIFACTS_DIR ?= build/artifacts
PROFILE ?= quick
RUNNER ?= auto
SOAK_VARIANTS ?= onnx,torch,rust
SOAK_DURATION ?= 30m
PYTEST_ARGS ?= --durations=40

# The CPU-only torch wheel beside the project, put first on pip's find-links (an inherited PIP_FIND_LINKS is kept
# after it): without it pip resolves torch==2.13.0 to PyPI's CUDA build. Elsewhere pip uses the index or find-links
# the user configured (the PyTorch CPU index, see README).
SHARED_WHEELS := $(abspath ../shared/wheels)
ifneq (,$(wildcard $(SHARED_WHEELS)))
export PIP_FIND_LINKS := $(SHARED_WHEELS) $(PIP_FIND_LINKS)
endif

ifneq (,$(wildcard .env))
include .env
export
endif

VENV_STAMP := $(VENV)/.installed
# Every in-repo variant keeps its runtime requirements in its own folder; the venv installs them all.
VARIANT_REQUIREMENTS := $(wildcard *_serving/requirements.txt)
ARTIFACTS_STAMP := $(ARTIFACTS_DIR)/manifest.json
MODEL_CHECKPOINT := model_zoo/default/mobilenet_v3_small_digits.pt
MODEL_SOURCES := $(wildcard model_zoo/*.py)
TRANSFORM_SOURCES := $(wildcard onnx_graph_transform/*.py) $(wildcard artifact_contract/*.py)
CPU_STAMP := build/.cpu-fingerprint

.PHONY: help setup model images artifacts compare report soak fault-kill-worker docker-images k8s test test-fast lint format clean

help:
	@echo "make compare   build what is missing, run every variant, write results/latest/ (PROFILE=quick|frameworks|full, RUNNER=auto|local|compose)"
	@echo "make soak      each variant at 70% of capacity for SOAK_DURATION (30m), memory/fds/threads judged"
	@echo "make fault-kill-worker   SIGKILL one worker of onnx-2workers under load; what was lost, how fast back"
	@echo "make test      the whole test suite (unit, live services, Docker when an engine answers)"
	@echo "make model     retrain the default model on the scikit-learn digits (about 5 minutes on 2 cores)"
	@echo "make artifacts export, fuse, optimize, quantize and validate the ONNX artifacts into $(ARTIFACTS_DIR)"
	@echo "make images    regenerate the payloads in images/"
	@echo "make serve-<variant>   start one registered variant (serve-torch, serve-onnx; settings from .env)"
	@echo "make docker-images   slim + dev image of every variant and the Locust image (OFFLINE=1: no registry)"
	@echo "make lint      ruff, the import layers (import-linter, contracts in pyproject.toml), deploy/k8s up to date"
	@echo "make k8s       regenerate deploy/k8s from the registry and compose.yaml"

$(VENV_STAMP): requirements/*.txt $(VARIANT_REQUIREMENTS) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt $(foreach file,$(VARIANT_REQUIREMENTS),-r $(file))
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

setup: $(VENV_STAMP)

model: $(VENV_STAMP)
	$(PY) -m model_zoo.train

images: $(VENV_STAMP)
	$(PY) images/make_payloads.py

# The served ONNX artifact is optimized for this CPU: the stamp changes (and the artifacts rebuild) only when the
# machine's CPU fingerprint does.
$(CPU_STAMP): $(VENV_STAMP) FORCE
	@mkdir -p $(@D)
	@$(PY) -c 'import json, artifact_contract.cpu as c; print(json.dumps(c.cpu_fingerprint()))' >$@.new
	@cmp -s $@.new $@ && rm -f $@.new || mv -f $@.new $@

.PHONY: FORCE
FORCE:

$(ARTIFACTS_STAMP): $(VENV_STAMP) $(MODEL_CHECKPOINT) $(MODEL_SOURCES) $(TRANSFORM_SOURCES) $(CPU_STAMP)
	$(PY) -m onnx_graph_transform build --out $(ARTIFACTS_DIR) --quantize

artifacts: $(ARTIFACTS_STAMP)
	@$(PY) -m onnx_graph_transform summary --out $(ARTIFACTS_DIR)

compare: artifacts
	$(PY) -m bench compare --profile $(PROFILE) --runner $(RUNNER)

report: $(VENV_STAMP)
	$(PY) -m bench report results/latest

# Soak: each variant held at 70% of its measured capacity for SOAK_DURATION, its process tree sampled (RSS per
# 10k requests, fds, threads); results/soak/<stamp>/soak.{json,md}. The fault: SIGKILL of one worker under load.
soak: artifacts
	$(PY) -m bench.soak --variants $(SOAK_VARIANTS) --duration $(SOAK_DURATION)

fault-kill-worker: artifacts
	$(PY) -m bench.soak --fault kill-worker --variants onnx-2workers

# `make serve-<variant>` for every variant of the registry (bench/variants.toml) that is a Python package: its
# module, with the settings from .env and the variant's own `settings` over them; the ONNX artifacts are built first when the variant serves one of them.
REGISTRY := $(PY) -m bench.registry
serve-%: $(VENV_STAMP)
	@package="$$($(REGISTRY) get $* package)" && test -n "$$package" || { echo "no Python variant '$*'"; exit 2; }
	@if $(REGISTRY) get $* artifacts | grep -q '^$(ARTIFACTS_DIR)/'; then $(MAKE) --no-print-directory artifacts; fi
	env $$($(REGISTRY) get $* settings) $(PY) -m "$$($(REGISTRY) get $* package)"

docker-images: artifacts
	docker/build.sh

test: artifacts
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: artifacts
	$(PY) -m pytest -m "not slow and not docker" $(PYTEST_ARGS)

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@mkdir -p build
	$(PY) -m bench.registry import-contracts >build/import-contracts.ini
	$(VENV)/bin/lint-imports build/import-contracts.ini
	$(PY) -m bench.k8s --check

k8s: $(VENV_STAMP)
	$(PY) -m bench.k8s

format: $(VENV_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf build results .pytest_cache .ruff_cache
