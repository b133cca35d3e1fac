# `make test` installs what the tests need and runs the whole suite (the README's test command).
PYTHON ?= python3
PG_URL ?= $(RATER_TEST_DATABASE_URL)

.PHONY: test install-test lint test-sqlite test-postgres demo

test: install-test lint test-sqlite test-postgres

install-test:
	./scripts/install-test-deps.sh
	$(PYTHON) -m pip install -q -e ".[test]"

lint:
	ruff check .
	ruff format --check .

# The SQLite pass ignores RATER_TEST_DATABASE_URL even when it is set (CI sets it for the next pass).
test-sqlite:
	env -u RATER_TEST_DATABASE_URL $(PYTHON) -m pytest -q

# Runs when RATER_TEST_DATABASE_URL names a PostgreSQL server (CI sets it); tests that never
# touch a database already ran above and are not repeated.
test-postgres:
	@if [ -n "$(PG_URL)" ]; then \
	  RATER_TEST_DATABASE_URL="$(PG_URL)" $(PYTHON) -m pytest -q -m "not nodb"; \
	else echo "RATER_TEST_DATABASE_URL not set: PostgreSQL pass skipped"; fi

demo:
	$(PYTHON) -m pip install -q -e . && rater demo
