# Two commands for a new machine: `make run` (platform on the embedded default) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The test suite runs against real PostgreSQL and Redis; these are the local defaults.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install run test lint format bench bench-quick models-check vllm migrate clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

# Embedded default: SQLite file under var/, in-memory channel layer, Celery eager.
run: migrate
	$(PY) manage.py ensure_demo_clinician
	$(PY) manage.py models_check
	@echo "Serving on http://$(HOST):$(PORT)/  (clinicians: http://$(HOST):$(PORT)/dashboard/)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m tests.preflight
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check triage voice clinical_rules tests

format: install
	$(PY) -m ruff format triage voice clinical_rules tests
	$(PY) -m ruff check --fix .

models-check: install
	$(PY) manage.py models_check

# Latency benchmark with the real models: prints a table, writes bench-results/*.json.
# Headline: the socket-level benchmark (the caller's side, through daphne); then the in-process
# stage breakdown. docs/benchmarks.md has the definitions.
bench: install
	$(PY) -m triage.bench_socket $(SOCKET_BENCH_ARGS)
	$(PY) -m voice.bench $(BENCH_ARGS)

bench-quick: install
	$(PY) -m triage.bench_socket --quick $(SOCKET_BENCH_ARGS)
	$(PY) -m voice.bench --quick --repeats 1 --turns 4 --sessions 2 $(BENCH_ARGS)

vllm:
	bash tools/vllm/setup.sh

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache bench-results test-artifacts
