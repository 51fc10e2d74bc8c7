# Two commands on a fresh machine: `make up` runs everything, `make test` passes the tests.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup up lint test test-fast test-sqlite test-postgresql check bench clean

setup: $(VENV)/.installed

# Installs are reproducible: every package version is pinned by requirements.lock.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

up: setup
	$(BIN)/ecomflow up

# ruff's rules and their reasons are in pyproject.toml; a noqa carries its reason on its line.
LINTED = src tests bench migrations scripts
lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

# Lint first, then both databases at once: most of the suite's time is waiting on processes and HTTP, not CPU.
# -O keeps each database's output together. scripts/ensure-postgres passes both lanes the admin URL of a usable
# PostgreSQL (ECOMFLOW_TEST_PG_ADMIN_URL): the one answering there, else a private throwaway cluster it runs
# for the duration (installing PostgreSQL with apt-get if needed); ECOMFLOW_TEST_PG_PRIVATE=1 forces the latter.
test: setup lint
	scripts/ensure-chromium
	scripts/ensure-postgres $(MAKE) --no-print-directory -j2 -O test-sqlite test-postgresql

# The inner loop: engine, API, flows' primitives and CLI on SQLite, no end-to-end stacks or browsers (~1.5 min).
FAST = tests/engine tests/api tests/flows tests/ecomflow tests/web/test_forms.py tests/web/test_i18n.py
test-fast: setup
	ECOMFLOW_TEST_DATABASE=sqlite $(BIN)/python -m pytest -q $(FAST)

# TESTS narrows both lanes to some paths (make test TESTS="tests/engine/db tests/e2e/test_scheduled_runs.py").
TESTS ?=

test-sqlite: setup
	scripts/ensure-chromium
	$(BIN)/ecomflow check
	ECOMFLOW_TEST_DATABASE=sqlite $(BIN)/python -m pytest -q $(TESTS)

# The whole suite again on PostgreSQL, except `ecomflow up` and the installed wheel's project, which always
# use the embedded SQLite default, and the tests marked db_independent (parsers, rules, definitions, lint and
# packaging checks: no database, so the SQLite lane runs them, and fails one that checks out a connection).
# Prefect's own database is on PostgreSQL too in this lane (tests/e2e/conftest.py), as in the production layout.
test-postgresql: setup
	scripts/ensure-chromium
	ECOMFLOW_TEST_DATABASE=postgresql scripts/ensure-postgres \
		$(BIN)/python -m pytest -q --ignore=tests/e2e/test_up.py --ignore=tests/e2e/test_wheel_install.py $(TESTS)

check: setup
	$(BIN)/ecomflow check

clean:
	rm -rf $(VENV) .ecomflow
