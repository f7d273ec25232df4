"""Make an HF-format (safetensors, bf16) copy of a GGUF model, offline, for vLLM.

vLLM's CPU backend cannot load GGUF, so the bundled Qwen2.5 GGUF is dequantized once with
transformers (+ gguf, accelerate) and cached. Runs in the vLLM virtualenv (it needs torch):

    .venv-vllm/bin/python -m voice.llm.convert_gguf SRC.gguf [OUT_DIR]
    .venv-vllm/bin/python -m voice.llm.convert_gguf --print-default-out SRC.gguf

The output folder is written under a temporary name and renamed into place under a lock, with a
marker file recording the source's sha256; a second run with the same source does nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

MARKER = "triage-convert.json"
FORMAT_VERSION = 1


def model_cache_root() -> Path:
    """The model cache folder: ModelSettings.cache_dir, else $TRIAGE_MODEL_CACHE, else ~/.cache."""
    try:
        from voice.provisioning import ModelSettings

        cache_dir = getattr(ModelSettings.from_env(), "cache_dir", None)
        if cache_dir:
            return Path(cache_dir)
    except Exception:  # provisioning missing or unconfigured: fall back to the env/default
        pass
    env = os.environ.get("TRIAGE_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "triage-voice" / "models"


def default_out_dir(src: str | os.PathLike[str]) -> Path:
    return model_cache_root() / "hf" / Path(src).name.removesuffix(".gguf")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def is_converted(out: Path, src_sha: str) -> bool:
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        marker.get("source_sha256") == src_sha
        and marker.get("format") == FORMAT_VERSION
        and (out / "model.safetensors").is_file()
        and (out / "config.json").is_file()
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def convert(
    src: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *, dtype: str = "bfloat16"
) -> Path:
    """Convert ``src`` (GGUF) to an HF folder at ``out`` unless it is already there. Returns ``out``."""
    src_path = Path(src).resolve()
    out_path = Path(out) if out is not None else default_out_dir(src_path)
    src_sha = sha256_file(src_path)
    with _locked(out_path.parent / f".{out_path.name}.lock"):
        if is_converted(out_path, src_sha):
            print(f"up to date: {out_path}", file=sys.stderr)
            return out_path
        tmp = out_path.parent / f".{out_path.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            t0 = time.monotonic()
            _convert_into(src_path, tmp, dtype)
            (tmp / MARKER).write_text(
                json.dumps(
                    {
                        "format": FORMAT_VERSION,
                        "source": src_path.name,
                        "source_sha256": src_sha,
                        "dtype": dtype,
                        "seconds": round(time.monotonic() - t0, 1),
                    },
                    indent=2,
                )
            )
            shutil.rmtree(out_path, ignore_errors=True)
            tmp.rename(out_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"converted {src_path.name} -> {out_path} in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        return out_path


def _convert_into(src: Path, out: Path, dtype: str) -> None:
    # Never reach for a hub: everything comes from the GGUF file.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF de-quantization bar
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()

    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch_dtype)
    # save_pretrained refuses a model loaded from GGUF (it carries a quantization config), so the
    # weights and config are written by hand.
    state = {k: v.detach().to(torch_dtype).contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)  # shared with embed_tokens; safetensors refuses aliases
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = [type(model).__name__]
    config["torch_dtype"] = dtype
    config["dtype"] = dtype
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    if model.generation_config is not None:
        model.generation_config.save_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    tokenizer.save_pretrained(str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m voice.llm.convert_gguf", description=__doc__.split("\n")[0]
    )
    parser.add_argument("src", help="GGUF file")
    parser.add_argument("out", nargs="?", help="output folder (default: the model cache)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument(
        "--print-default-out", action="store_true", help="print the default output folder and exit"
    )
    args = parser.parse_args(argv)
    if args.print_default_out:
        print(default_out_dir(args.src))
        return 0
    print(convert(args.src, args.out, dtype=args.dtype))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
