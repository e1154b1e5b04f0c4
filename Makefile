# The lab's entry points. `make help` lists them; extra flags go through ARGS="...".
# Every target sets up the virtual environment first (once: a stamp records it).

PYTHON_BOOT ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# `make data` imports FROM when given, else a local copy at LOCAL_DATA when present,
# else downloads aclImdb from its official address.
FROM ?=
LOCAL_DATA ?= $(wildcard ../shared/data/word2vec-nlp-tutorial)
FORCE ?=
PYTEST_ARGS ?=
# NPROC=N trains on N data-parallel processes (N GPUs, or N CPU processes over gloo), started by
# torchrun --standalone (a free local port, so runs side by side do not collide); each process takes
# its share of the cores unless OMP_NUM_THREADS says otherwise.
NPROC ?= 1
LAUNCH = $(if $(filter-out 1,$(NPROC)),OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$$(( $$(nproc) / $(NPROC) > 0 ? $$(nproc) / $(NPROC) : 1 ))} \
	$(VENV)/bin/torchrun --standalone --nproc_per_node $(NPROC),$(PY))

.DEFAULT_GOAL := help
.PHONY: help families setup setup-gpu data data-ready test test-as-avx2 test-fast bench-lstm bench-precision gpu-check

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-26s %s\n", $$1, $$2}'
	@echo "Model families (imdb_sentiment/families.py), each trained by train/<family>.py:"
	@$(PYTHON_BOOT) -m imdb_sentiment.families

families: ## list the model families: make train-<family> trains one
	@$(PYTHON_BOOT) -m imdb_sentiment.families

setup: $(STAMP) ## create .venv and install requirements.txt (once)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup-gpu: setup ## add the GPU-only extras (unsloth) on a CUDA machine
	$(PY) -m pip install -r requirements-gpu.txt

data: setup ## fill data/ (FROM=<dir or archive> to import a local copy; FORCE=1 to replace)
	$(PY) -m imdb_sentiment.fetch $(if $(FROM),--from "$(FROM)",$(if $(LOCAL_DATA),--from "$(LOCAL_DATA)")) $(if $(FORCE),--force)

data-ready: setup
	@test -e data/labeledTrainData.tsv -o -e data/labeledTrainData.tsv.zip || $(MAKE) --no-print-directory data

# On a CPU with native bf16, the precision tests run a second time as on one without (AVX2 only):
# both kinds of host are proven from one. On an AVX2 host the first run already is that.
AS_AVX2 := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
NATIVE_BF16 = $(PY) -c "import sys; from imdb_sentiment.device import cpu_has_native_bf16 as n; sys.exit(not n())"

# Every core runs tests (pytest-xdist), a test module per worker: its fixtures are built once,
# the longest modules first (tests/conftest.py, LONGEST_FIRST; xdist would reorder by test count).
# A worker that crashes fails its tests and is not restarted (a restarted one could hang the run).
PARALLEL := -n auto --dist loadfile --no-loadscope-reorder --max-worker-restart 0

test: setup ## run the whole test suite (what CI runs), then the precision tests as an AVX2 host
	$(PY) -m pytest -q $(PARALLEL) $(PYTEST_ARGS)
	@if $(NATIVE_BF16); then echo "native bf16 here: the precision tests again as a CPU without it (AVX2)"; \
		$(MAKE) --no-print-directory test-as-avx2; fi

test-as-avx2: setup ## the precision tests as on a CPU without native bf16 (instruction set capped to AVX2)
	$(AS_AVX2) $(PY) -m pytest -q $(PARALLEL) -m precision $(PYTEST_ARGS)

test-fast: setup ## the fast tier: no subprocess, server, browser or end-to-end test (about 3 minutes)
	$(PY) -m pytest -q $(PARALLEL) -m "not slow and not browser and not postgres" $(PYTEST_ARGS)

# Every family of imdb_sentiment/families.py: make train-<family> runs train/<family>.py
# (dashes as underscores) with ARGS, e.g. make train-lstm ARGS="--epochs 5"; NPROC=2 on two processes.
train-%: data-ready
	@test -f "train/$(subst -,_,$*).py" || { echo "error: no family '$*'; make families lists them" >&2; exit 2; }
	$(LAUNCH) train/$(subst -,_,$*).py $(ARGS)

bench-lstm: data-ready ## time an LSTM epoch: our batching vs pad-everything-to-512
	$(PY) bench/lstm_batching.py $(ARGS)

bench-precision: data-ready ## fp32 vs bf16: ms per batch and test accuracy, MiniLM and LSTM (ARGS="--limit 2000")
	$(PY) bench/precision.py $(ARGS)

gpu-check: setup ## on a CUDA machine: what runs and how fast (precisions, 8/4-bit LoRA, unsloth, DDP, throughput)
	$(PY) bench/gpu_check.py $(ARGS)

# Each area keeps its targets in its own file.
-include mk/*.mk
