# One entry point: `make book` (set up, execute the notebooks, build the book) and
# `make test` (set up, lint, pytest, execute the notebooks, strict book build).
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PROFILE ?= quick
# Data: $MAMLPRIV_DATA if set, else ../shared/data when it exists (the project's machines),
# else the library's default (~/.cache/mamlpriv/data, downloaded by torchvision).
MAMLPRIV_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export MAMLPRIV_DATA
export PYTHONUNBUFFERED := 1
KERNEL  := mamlpriv
# Torch jobs at once (pytest workers, notebooks executed together; default: the cores, at
# most 8) and torch threads each (default 1): JOBS x THREADS should not exceed the cores.
# Two jobs of 2 threads on 2 cores run many times slower each; two of 1 thread about as
# fast as one of 2.
JOBS    ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ "$$n" -gt 8 ] && n=8; echo $$n)
THREADS ?= 1
NOTEBOOKS := $(wildcard notebooks/*.ipynb)

.PHONY: setup execute book test lint pytest nbval sync bench paper status clean check-book bench-env peers

setup: $(VENV)/.installed

# requirements.txt and the package (editable): with uv when it can be used (about 30 s for
# a fresh .venv instead of about 2 min), else pip; MAMLPRIV_INSTALLER=pip forces pip
$(VENV)/.installed: requirements.txt pyproject.toml scripts/setup_env.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python scripts/setup_env.py
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (mamlpriv)"
	touch $@

# Regenerate each .ipynb from its jupytext .py source (run after editing a .py).
sync: setup
	$(BIN)/jupytext --sync notebooks/*.py

execute: setup
	$(BIN)/python scripts/execute_book.py --profile $(PROFILE) --kernel $(KERNEL) --out book \
	  --jobs $(JOBS) --threads $(THREADS) $(NOTEBOOKS)
	$(BIN)/python scripts/hide_injected.py book/*.ipynb

book: execute
	$(BIN)/jupyter-book build book/ --toc $(abspath _toc.yml) --path-output book -W -n --keep-going
	@echo "open book/_build/html/index.html"

# Lint and format check (ruff) and a type check (mypy) of the library
lint: setup
	$(BIN)/ruff check mamlpriv tests bench scripts
	$(BIN)/ruff format --check mamlpriv
	$(BIN)/mypy

# JOBS pytest-xdist workers; a test file stays on one worker (its module fixtures are built once)
pytest: setup
	OMP_NUM_THREADS=$(THREADS) MAMLPRIV_THREADS=$(THREADS) $(BIN)/python -m pytest -n $(JOBS) --dist loadfile tests

nbval: setup
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/

# The notebooks run once: papermill executes them for the book and fails on any cell's error
# (nbval, which ran them a second time, stays available as `make nbval`).
test: lint pytest book check-book

# Open every page of the built book in headless Chromium (Debian's `chromium`, driven by
# Playwright) and fail on raw TeX, requests off the machine, broken images, tracebacks or
# warnings in outputs, overflowing content and JavaScript errors. Screenshots go to
# book/_build/screenshots/. Skipped without Chromium, except under CI=true.
# Options: make check-book CHECK_ARGS="--html _build/html"
check-book: setup
	$(BIN)/python scripts/check_book.py $(CHECK_ARGS)

bench: setup
	$(BIN)/python bench/maml_speed.py
	$(BIN)/python bench/attack_runtime.py
	$(BIN)/python bench/runner_scaling.py
	$(BIN)/python bench/paper_profile.py

# The paper-scale profile of every experiment into results/paper/ (hours on a laptop CPU;
# resumes where it stopped). Options: make paper RUN_ARGS="--backend joblib --jobs 2"
paper: setup
	$(BIN)/python -m mamlpriv run --profile paper $(RUN_ARGS)

status: setup
	$(BIN)/python -m mamlpriv status --profile paper

clean:
	rm -rf book/_build book/*.ipynb runs

# The peer benchmark's own environment .venv-bench (learn2learn 0.2.0 built from its Cython
# sources, higher, torch, mamlpriv): apart from .venv, as learn2learn pins an old stack.
# TORCH_LOCK=/path/to/lock runs its torch import check under flock.
bench-env:
	PYTHON=$(PYTHON) scripts/build_bench_env.sh

# mamlpriv beside learn2learn, higher and plain autograd loops (MAML meta-iteration, query-attack
# iteration, share of the CPU's fp32 peak); a few minutes. Options: make peers PEERS_ARGS="--repeats 10"
peers:
	@test -x .venv-bench/bin/python || $(MAKE) bench-env
	$(if $(TORCH_LOCK),flock $(TORCH_LOCK)) .venv-bench/bin/python bench/peers.py $(PEERS_ARGS)
