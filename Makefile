# Two commands on a fresh machine: `make up` runs everything, `make test` passes the tests.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup up test test-sqlite test-postgresql check bench clean

setup: $(VENV)/.installed

# Installs are reproducible: every package version is pinned by requirements.lock.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

up: setup
	$(BIN)/ecomflow up

test: test-sqlite test-postgresql

test-sqlite: setup
	scripts/ensure-chromium
	$(BIN)/ecomflow check
	ECOMFLOW_TEST_DATABASE=sqlite $(BIN)/python -m pytest -q

# On PostgreSQL every engine, API and core end-to-end test runs again; each process's own rule-by-rule
# e2e module runs on SQLite only (the demo test drives every flow on PostgreSQL), and `ecomflow up`
# always uses the embedded SQLite default, so it is tested once.
test-postgresql: setup
	scripts/ensure-postgres
	scripts/ensure-chromium
	ECOMFLOW_TEST_DATABASE=postgresql $(BIN)/python -m pytest -q -m "not processes" --ignore=tests/e2e/test_up.py

check: setup
	$(BIN)/ecomflow check

clean:
	rm -rf $(VENV) .ecomflow
