# `make test` installs what the tests need and runs the whole suite (the README's test command).
# Everything runs in the project's virtual environment .venv (created when missing, the same one
# the README's demo command makes): Debian and Ubuntu refuse `pip install` into the system
# Python (PEP 668). PYTHON is only the interpreter that creates .venv (Python >= 3.11 with venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.rater-test-installed
PG_URL ?= $(RATER_TEST_DATABASE_URL)
# Both passes run in parallel workers (pytest-xdist): one per core, at most 4 (each worker has
# its own database and Chromium). `make test WORKERS=0` runs in this process, one test at a time.
WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -q -n $(WORKERS) --maxprocesses=4 --dist worksteal

.PHONY: test install-test lint test-sqlite test-postgres demo

test: install-test lint test-sqlite test-postgres

# bin/pip, not bin/python: a venv whose creation failed half-way (no ensurepip, e.g. Debian
# without python3-venv) has a python but no pip, and is created again on the next run.
$(BIN)/pip:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make needs Python >= 3.11 as $(PYTHON) (or: make PYTHON=python3.12 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(BIN)/pip pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install-test: $(INSTALLED)
	./scripts/install-test-deps.sh

# ruff (style, unused arguments), mypy on rater/ (settings in pyproject.toml [tool.mypy]) and the
# import contracts (pure cores, independent blueprint views, no cycles: [tool.importlinter]).
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy rater
	$(BIN)/lint-imports

# The SQLite pass ignores RATER_TEST_DATABASE_URL even when it is set (CI sets it for the next pass).
test-sqlite: $(INSTALLED)
	env -u RATER_TEST_DATABASE_URL $(PYTEST)

# Runs when RATER_TEST_DATABASE_URL names a PostgreSQL server (CI sets it); tests that never
# touch a database already ran above and are not repeated.
test-postgres: $(INSTALLED)
	@if [ -n "$(PG_URL)" ]; then \
	  RATER_TEST_DATABASE_URL="$(PG_URL)" $(PYTEST) -m "not nodb"; \
	else echo "RATER_TEST_DATABASE_URL not set: PostgreSQL pass skipped"; fi

demo: $(BIN)/pip
	$(BIN)/python -m pip install -q -e . && $(BIN)/rater demo
