# genemask-pipeline: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU wheel; GPU users install their own CUDA build of torch first (see README).
TORCH_SPEC ?= torch==2.13.0
CORES ?= 2
# Rules call the `genemask` CLI: put the venv first on PATH for snakemake and its jobs.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test lint bench gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml src/genemask/ngrams/_ngramcount.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[workflow,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/snakefmt --check workflow
	$(BIN)/snakemake --lint --configfile config/demo.yaml
	$(BIN)/snakemake --lint --configfile config/config.yaml

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	for b in benchmarks/*.py; do case $$b in */_*) continue;; esac; $(BIN)/python $$b || exit 1; done

# One CUDA GPU, at most 8 minutes: every GPU path run once, throughput against a plain HF loop, the report in
# results/gpu_check/. Without a GPU: a one-line notice (the CPU mode, --device cpu --tiny, runs in `make test`).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf results resources .snakemake
