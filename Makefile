# Every target sets itself up from a fresh clone: a virtualenv in .venv, the package installed
# editable with its dev tools. Re-installs when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test check unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default (SQLite in ./var): load the demo district when the
# store is empty, then show what it holds.
run: install
	$(BIN)/studyledger run

# Lint, import contract and types, then the whole suite (SQLite, PostgreSQL).
test: install check
	$(BIN)/pytest

check: install
	$(BIN)/ruff check domain projections api consumers infra tests
	$(BIN)/lint-imports
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

bench: install
	$(BIN)/studyledger bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
