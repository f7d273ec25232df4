"""Learned emergency scorer: a calibrated, raise-only second opinion on the whole statement.

The rules match words; a caller who describes an emergency in words no rule anticipated ("a
desperate pain down below" in a 14-year-old boy) gets a level 3-5 or none. This scorer reads the
whole statement instead: a logistic regression over its sentence embedding (all-MiniLM-L6-v2)
and the session context (subject, age band, pregnancy), trained on the labelled dev vignettes
(``tests/clinical_rules/vignettes/dev.yaml``: emergency = expected level 1-2).

What it may do: when its probability reaches the threshold calibrated by leave-one-round-out
cross-validation on the dev set, and the rules placed the call at level 3-5 or nowhere, it adds a
level-2 finding (``LEARNED-EMERGENCY``) with its evidence: the probability, the threshold and the
nearest dev statements with their levels. Level 2 means "emergency department now"; it does not
trigger the fixed emergency script (that stays with the rules), the interview keeps asking its
questions, and no later answer removes the finding.
What it may not do: lower a level, remove a finding, choose a script, or speak. No generative
model is involved: this is a linear model over a fixed encoder, and its weights are data in the
rule set (``emergency_scorer.npz``), reproducible from dev.yaml with
``python -m evals.voice.emergency_scorer train``.

Plain numpy: no Django and no model loading here; the embedder is passed in, like the safety net's.
Embedding a statement is CPU work (p50 39 ms, p95 61 ms CPU for dev statements on a busy 2-core box):
callers on an event loop run :meth:`score` in a thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .loader import DEFAULT_PATH
from .safety_net import Embedder
from .types import Assessment, Finding, PatientContext, UrgencyLevel

MODEL_FILE = "emergency_scorer.npz"
RULE_ID = "LEARNED-EMERGENCY"
RAISED_LEVEL = 2
SOURCE = "emergency_scorer"
AGE_BANDS = ("under_3_months", "3_months_to_2_years", "2_to_11", "12_to_17", "18_to_64", "65_plus")
EMBEDDING_SCALE = 4.0  # unit-length 384-d rows have entries ~0.05: scaled to the context features' range
L2 = 0.01
NEIGHBOURS = 3
PROVENANCE = (
    "Learned from the project's labelled dev vignettes (written from NHS 111, NICE, Manchester/CTAS, "
    "AHA/ASA and WHO guidance); calibrated by leave-one-round-out cross-validation",
)


class ScorerModelError(ValueError):
    """The model file is missing, malformed, or was trained on another dev set."""


@dataclass(frozen=True, slots=True)
class Neighbour:
    vignette_id: str
    level: int
    similarity: float


@dataclass(frozen=True, slots=True)
class ScorerModel:
    weights: np.ndarray  # (d + n_context,)
    bias: float
    threshold: float
    version: str  # the rule set version it was trained for
    dev_sha256: str  # of the dev.yaml it was trained on
    dev_ids: tuple[str, ...]
    dev_levels: np.ndarray  # (n,) int
    dev_embeddings: np.ndarray  # (n, d) float16: the nearest-statement evidence
    calibration: dict[str, float]  # leave-one-round-out figures at the threshold


@dataclass(frozen=True, slots=True)
class ScorerReading:
    probability: float
    threshold: float
    neighbours: tuple[Neighbour, ...]
    model_version: str

    @property
    def raises(self) -> bool:
        return self.probability >= self.threshold

    def finding(self, text: str) -> Finding:
        near = ", ".join(
            f"{n.vignette_id} (level {n.level}, similarity {n.similarity:.2f})" for n in self.neighbours
        )
        return Finding(
            rule_id=RULE_ID,
            rule_version=self.model_version,
            label="Statement resembles emergencies (learned scorer)",
            evidence_text=text,
            start=-1,
            end=-1,
            assertion="possible",
            explanation=(
                f"Learned emergency scorer: probability {self.probability:.2f} that this statement "
                f"describes an emergency (threshold {self.threshold:.2f}); no rule placed it at level 1-2. "
                f"Nearest dev statements: {near}. It can only raise a level, to 2 (emergency department "
                "now); the interview's questions still run."
            ),
            provenance=PROVENANCE,
            level=RAISED_LEVEL,
            escalate=False,
            utterance=-1,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": round(self.probability, 4),
            "threshold": self.threshold,
            "raises": self.raises,
            "neighbours": [
                {"id": n.vignette_id, "level": n.level, "similarity": round(n.similarity, 3)}
                for n in self.neighbours
            ],
            "model_version": self.model_version,
        }


# --- features and fitting (pure numpy: the training command lives in voice/) ------------------


def context_features(context: PatientContext | None) -> np.ndarray:
    c = context or PatientContext()
    flags = [
        c.subject == "child",
        c.subject == "other",
        *(c.age_band == b for b in AGE_BANDS),
        bool(c.pregnant),
    ]
    return np.asarray(flags, dtype=np.float32)


def features(embeddings: np.ndarray, contexts: Sequence[PatientContext | None]) -> np.ndarray:
    ctx = np.stack([context_features(c) for c in contexts]) if len(contexts) else np.zeros((0, 9), np.float32)
    return np.hstack([np.asarray(embeddings, np.float32) * EMBEDDING_SCALE, ctx]).astype(np.float64)


def fit(x: np.ndarray, y: np.ndarray, *, l2: float = L2, iterations: int = 25) -> tuple[np.ndarray, float]:
    """Class-balanced, L2-regularised logistic regression by Newton's method: deterministic, no
    learning rate, converges in a few steps at this size (about 1,000 x 400)."""
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    pos = float(y.mean())
    if not 0.0 < pos < 1.0:
        raise ValueError("training labels need both emergencies and non-emergencies")
    sample_w = np.where(y > 0.5, 0.5 / pos, 0.5 / (1.0 - pos))
    a = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = _sigmoid(a @ theta)
        grad = a.T @ (sample_w * (p - y)) / n + reg * theta
        h = (a * (sample_w * p * (1.0 - p))[:, None]).T @ a / n + np.diag(reg)
        step = np.linalg.solve(h, grad)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def predict(x: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    return _sigmoid(np.asarray(x, np.float64) @ weights + bias)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def round_of(vignette_id: str) -> str:
    """Dev vignettes carry their round in the id's letter prefix (C..., D..., F2..)."""
    return vignette_id.rstrip("0123456789") or vignette_id


# --- the stored model ---------------------------------------------------------------------------


def model_path(ruleset_dir: str | Path | None = None) -> Path:
    return Path(ruleset_dir or DEFAULT_PATH) / MODEL_FILE


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_model(model: ScorerModel, path: str | Path) -> None:
    cal_keys = sorted(model.calibration)
    with open(path, "wb") as fh:
        np.savez_compressed(
            fh,
            weights=model.weights.astype(np.float64),
            bias=np.float64(model.bias),
            threshold=np.float64(model.threshold),
            version=np.array(model.version),
            dev_sha256=np.array(model.dev_sha256),
            dev_ids=np.array(model.dev_ids),
            dev_levels=model.dev_levels.astype(np.int8),
            dev_embeddings=model.dev_embeddings.astype(np.float16),
            calibration_keys=np.array(cal_keys),
            calibration_values=np.array([model.calibration[k] for k in cal_keys], dtype=np.float64),
        )


def load_model(path: str | Path | None = None) -> ScorerModel:
    p = Path(path) if path is not None else model_path()
    if not p.is_file():
        raise ScorerModelError(
            f"{p}: no emergency scorer model (train it: python -m evals.voice.emergency_scorer train)"
        )
    try:
        with np.load(p, allow_pickle=False) as z:
            model = ScorerModel(
                weights=z["weights"].astype(np.float64),
                bias=float(z["bias"]),
                threshold=float(z["threshold"]),
                version=str(z["version"]),
                dev_sha256=str(z["dev_sha256"]),
                dev_ids=tuple(str(i) for i in z["dev_ids"]),
                dev_levels=z["dev_levels"].astype(np.int64),
                dev_embeddings=z["dev_embeddings"].astype(np.float32),
                calibration=dict(
                    zip(
                        (str(k) for k in z["calibration_keys"]),
                        map(float, z["calibration_values"]),
                        strict=True,
                    )
                ),
            )
    except (KeyError, ValueError, OSError) as exc:
        raise ScorerModelError(f"{p}: not a valid emergency scorer model ({exc})") from exc
    if not 0.5 <= model.threshold < 1.0:
        raise ScorerModelError(f"{p}: threshold {model.threshold} outside [0.5, 1)")
    if len(model.dev_ids) != len(model.dev_levels) or len(model.dev_ids) != len(model.dev_embeddings):
        raise ScorerModelError(f"{p}: evidence arrays disagree in length")
    return model


class EmergencyScorer:
    """Model + embedder. Thread-safe (read-only state); one per process."""

    def __init__(self, embedder: Embedder, model: ScorerModel | None = None) -> None:
        self.model = model or load_model()
        self._embedder = embedder

    def score(self, text: str, context: PatientContext | None = None) -> ScorerReading:
        vec = np.asarray(self._embedder.embed([text]), dtype=np.float32)
        return self.read(vec[0], context)

    def read(self, embedding: np.ndarray, context: PatientContext | None = None) -> ScorerReading:
        m = self.model
        x = features(embedding[None, :], [context])
        p = float(predict(x, m.weights, m.bias)[0])
        sims = m.dev_embeddings @ np.asarray(embedding, np.float32)
        top = np.argsort(-sims)[:NEIGHBOURS]
        near = tuple(Neighbour(m.dev_ids[i], int(m.dev_levels[i]), float(sims[i])) for i in top)
        return ScorerReading(p, m.threshold, near, m.version)


def may_raise(assessment: Assessment | None) -> bool:
    """Only a call the rules placed at 3-5, or nowhere, can be raised (never an escalated one)."""
    if assessment is None:
        return True
    if assessment.escalate:
        return False
    return assessment.level is None or int(assessment.level) > RAISED_LEVEL


def raise_only(assessment: Assessment, reading: ScorerReading, text: str) -> Assessment:
    """The assessment with the scorer's finding added when it raises; otherwise unchanged.
    The result's level is never higher (less urgent) than the input's."""
    if not reading.raises or not may_raise(assessment):
        return assessment
    level = UrgencyLevel(RAISED_LEVEL)
    return replace(
        assessment,
        level=level,
        disposition=level.disposition,
        reasons=(*assessment.reasons, reading.finding(text)),
    )


@dataclass(frozen=True, slots=True)
class LearnedRaise:
    """A raise the scorer made in a live call: the interview's finding and the dashboard alert
    (shaped like a safety-net hit: ``description_id``, ``alert_text``, ``to_dict``)."""

    reading: ScorerReading
    text: str  # the caller's statement (clinician-facing only; never logged at INFO)

    description_id = RULE_ID

    @property
    def finding(self) -> Finding:
        return self.reading.finding(self.text)

    @property
    def score(self) -> float:
        return self.reading.probability

    @property
    def alert_text(self) -> str:
        return "possible emergency: statement resembles emergencies (learned scorer) — raised to level 2"

    def to_dict(self) -> dict[str, Any]:
        d = self.finding.to_dict()
        d.update(source=SOURCE, label=self.alert_text, score=round(self.reading.probability, 4),
                 scorer=self.reading.to_dict())  # fmt: skip
        return d
