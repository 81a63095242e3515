# Every target sets itself up from a fresh clone: a virtualenv in .venv, the package installed
# editable with its dev tools. Re-installs when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser run test check unit bench fuzz conformance clean

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

# The real-browser page test drives Debian's Chromium through chromedriver; pages are in
# Chinese, so a CJK font too. Installed once from Debian's packages when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || ! fc-list 2>/dev/null | grep -qi wqy; then \
	  echo "installing chromium, chromium-driver and fonts-wqy-zenhei (Debian packages)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install \
	    -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null; fi

# Lint, import contract and types, then the whole suite (SQLite, PostgreSQL, Kafka, browser)
# in two worker processes: most of its time is spent waiting on servers, brokers and child
# processes, so two workers halve the wall time even on two cores. A file's tests stay in one
# worker (its module fixtures are built once). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: install browser check
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

check: install
	$(BIN)/ruff check domain projections api consumers infra tests
	$(BIN)/lint-imports
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

bench: install
	$(BIN)/studyledger bench

# Schemathesis from /openapi.json of a served demo district, anonymous and with an auditor key:
# fails on a 5xx, an undocumented status or content type, or an answer off its schema.
# FUZZ_EXAMPLES is per operation and phase (600: about 12,000 requests, 3 minutes).
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= 42
fuzz: install
	$(BIN)/python -m tests.e2e.fuzz --examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED)

# The ADL xAPI 2.0 conformance suite against a fresh LRS (empty SQLite store, free port, an
# lrs key); needs node and npm. XAPI_SUITE_STEP=1|2|3 and the runner's other options apply.
# XAPI_SUITE_RUNNER=PATH runs another copy (default: ../shared/xapi/run-suite.sh).
conformance: install
	$(BIN)/python -m infra.xapi.conformance

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
