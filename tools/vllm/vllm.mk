# vLLM (CPU) environment for the VllmGenerator test. Include from the top-level Makefile:
#     include tools/vllm/vllm.mk
# `make vllm-env` is idempotent (seconds when already set up); `make test-vllm` runs the test.

VLLM_VENV ?= .venv-vllm

.PHONY: vllm-env test-vllm bench-llm

vllm-env:
	bash tools/vllm/setup.sh

test-vllm: vllm-env
	.venv/bin/pytest -p no:django tests/voice/test_llm_vllm.py -q

bench-llm:
	.venv/bin/python -m evals.voice.llm_bench --vllm
