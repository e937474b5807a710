# One entry point: `make book` (set up, execute the notebooks, build the book) and
# `make test` (set up, pytest, nbval on the notebooks, strict book build).
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
NOTEBOOKS := $(wildcard notebooks/*.ipynb)

.PHONY: setup execute book test pytest nbval sync bench paper status clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (mamlpriv)"
	touch $@

# Regenerate each .ipynb from its jupytext .py source (run after editing a .py).
sync: setup
	$(BIN)/jupytext --sync notebooks/*.py

execute: setup
	@for nb in $(NOTEBOOKS); do \
	  echo "papermill $$nb -> book/$$(basename $$nb) (profile $(PROFILE))"; \
	  $(BIN)/papermill --no-progress-bar -k $(KERNEL) --cwd notebooks -p profile $(PROFILE) \
	    $$nb book/$$(basename $$nb) || exit 1; \
	done

book: execute
	$(BIN)/jupyter-book build book/ --toc $(abspath _toc.yml) --path-output book -W -n --keep-going
	@echo "open book/_build/html/index.html"

pytest: setup
	$(BIN)/python -m pytest tests

nbval: setup
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/

test: pytest nbval book

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
