# genemask-pipeline: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch: the CPU wheel (torch==2.13.0) where `nvidia-smi` is absent or fails, else the newest CUDA build the
# driver supports (the table in src/genemask/training/torch_install.py; its `--print` shows the choice).
# Overrides: TORCH_DEVICE=cpu, TORCH_SPEC=torch==X, TORCH_INDEX_URL=https://download.pytorch.org/whl/cuXYZ.
export TORCH_DEVICE TORCH_SPEC TORCH_INDEX_URL
CORES ?= 2
# Rules call the `genemask` CLI: put the venv first on PATH for snakemake and its jobs.
export PATH := $(abspath $(BIN)):$(PATH)
# Setup compiles no bytecode (below): Python writes it on first import, into .venv and the ignored __pycache__
# folders, also where PYTHONDONTWRITEBYTECODE is set (else every demo job would compile torch again).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test lint bench gpu-check clean

setup: $(STAMP)

# pip installs torch (it reads the machine's pip configuration: the CPU wheel may be a local file there),
# then uv the rest from PyPI, several times faster (uv reads no pip configuration: UV_DEFAULT_INDEX names a
# mirror); pip if uv fails. uv's cache is in .venv (or UV_CACHE_DIR): on one file system, it hard-links files.
# Nothing is compiled to bytecode here (pip compiled every file of every package: 20 s for torch alone).
$(STAMP): pyproject.toml src/genemask/ngrams/_ngramcount.c src/genemask/training/torch_install.py
	$(PYTHON) -m venv $(VENV)
	$(PYTHON) src/genemask/training/torch_install.py --install $(BIN)/pip --no-compile
	{ $(BIN)/pip install --quiet uv && UV_CACHE_DIR="$${UV_CACHE_DIR:-$(VENV)/uv-cache}" \
		$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[workflow,dev]"; } || \
		{ echo "setup: uv failed; installing with pip (slower)" >&2; \
		$(BIN)/pip install --quiet --no-compile -e ".[workflow,dev]"; }
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

# One CUDA GPU, at most 8 minutes: `genemask pretrain` timed per preset, micro-batch and compile mode, stop and
# resume, a fine-tuning cell; the report in results/gpu_check/. Uses the installed .venv and no network (compute
# nodes have none): run `make setup` on a node with network first. Without a GPU: a one-line notice, exit 0.
gpu-check:
	@test -x $(BIN)/python || { echo "gpu-check: no $(VENV) here; run \`make setup\` first (on a node with network)"; exit 1; }
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf results resources .snakemake
