"""Speech recognition with faster-whisper: a shared, thread-safe recognizer and a
per-turn streaming transcriber (partials by local agreement, then a final pass).

Whisper is trained on 30 s windows and faster-whisper pads every input to 30 s, so a decode
of 2 s of speech costs as much as one of 30 s. By default (``window="fit"``) the recognizer
encodes only the audio plus ``fit_pad_s`` of silence, rounded up to whole seconds and at least
``fit_min_window_s``: about 4x
less work per decode on a 2-core CPU at the same word error rate on our speech set
(docs/voice-pipeline.md, "ASR window"). A fitted window loses Whisper's end-of-window cue and
the decoder can loop ("Okay okay okay", or the sentence again from its start), so the token
budget scales with the audio and a trailing repeat of the text's own beginning is cut
(:func:`trim_trailing_repeat`). ``window="full"`` keeps faster-whisper's own 30 s path (long
audio always takes it).

Clinical vocabulary bias (``vocabulary``): the rule set's own red-flag words (see
:func:`resolve_vocabulary`) are put before every decode's prompt, in both window paths, so the
small models keep "chest pain" instead of "just pain" (docs/voice-pipeline.md, "Clinical
vocabulary"). It is previous-text context, not a constraint: words not spoken are not forced.

Partials are also rationed: at most one every ``partial_interval_ms`` of new audio, never
two in flight for the same turn (a due partial is skipped and counted while the CPU is
behind), and once the turn is long only the audio after the committed words is decoded,
with those words passed as the prompt, so decoder cost stays bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voice.events import FinalTranscript, PartialTranscript
from voice.interfaces import SpeechRecognizer, Transcription

if TYPE_CHECKING:
    from voice.provisioning import ModelSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
NO_WORDS_LOGPROB = -10.0  # avg_logprob reported when the decoder produced no tokens
_MIN_DECODE_S = 0.1  # shorter audio is not worth a decode (Whisper hallucinates on it)
_WINDOW_S = 30.0  # Whisper's fixed input window
_FRAMES_PER_S = 100  # log-mel frames per second (hop 160 at 16 kHz)


class WhisperRecognizer:
    """``SpeechRecognizer`` over one loaded faster-whisper model, shared by all sessions.

    Thread-safe: CTranslate2 serialises calls per worker, so several threads may call
    :meth:`transcribe` at once. ``cpu_threads`` is the intra-op thread count of one decode
    and ``num_workers`` the number of decodes that truly run in parallel; keep
    ``cpu_threads * num_workers`` at or below the cores you give ASR (2 x 1 on a 2-core
    box). On CUDA use ``device="cuda", compute_type="float16"`` and raise ``num_workers``.
    """

    sample_rate = SAMPLE_RATE
    supports_partial = True  # understands transcribe(..., partial=True)

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        num_workers: int = 1,
        language: str | None = "en",
        beam_size: int = 1,
        window: str = "fit",
        fit_pad_s: float = 2.0,
        fit_min_window_s: float = 6.0,
        fit_tokens_per_s: float = 8.0,
        vocabulary: Sequence[str] | str | None = None,
    ) -> None:
        from faster_whisper import WhisperModel  # heavy import: only when a model is loaded

        self.model_dir = Path(model_dir)
        self.device = device
        self.compute_type = compute_type
        self.final_beam_size = beam_size  # final pass; partials are always greedy
        self._model = WhisperModel(
            str(self.model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
            local_files_only=True,
        )
        # English-only checkpoints (*.en) accept nothing but "en".
        self.language = "en" if not self._model.model.is_multilingual else language
        if window not in ("fit", "full"):
            raise ValueError(f"window must be 'fit' or 'full', not {window!r}")
        # A fitted window needs a known language (no detection pass on a short window).
        self.window = window if self.language else "full"
        self.fit_pad_s = fit_pad_s
        self.fit_min_window_s = fit_min_window_s
        self.fit_tokens_per_s = fit_tokens_per_s
        self.bias_text = bias_prompt(vocabulary)
        self._tokenizer = None
        if self.window == "fit":
            from faster_whisper.tokenizer import Tokenizer

            self._tokenizer = Tokenizer(
                self._model.hf_tokenizer,
                self._model.model.is_multilingual,
                task="transcribe",
                language=self.language,
            )

    @classmethod
    def from_settings(cls, settings: ModelSettings | None = None, **kwargs) -> WhisperRecognizer:
        """Load the model ``settings.asr_model`` names (default: from the environment)."""
        from voice.provisioning import ModelSettings, asr_model_dir

        return cls(asr_model_dir(settings or ModelSettings.from_env()), **kwargs)

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        prompt: str | None = None,
        partial: bool = False,
        word_timestamps: bool | None = None,
        full_window: bool = False,
    ) -> Transcription:
        """Blocking decode of float32 16 kHz mono audio.

        ``partial=True``: greedy, no timestamp tokens (word timings on request: the
        streaming transcriber uses them to slide its window). Otherwise the final
        settings (``final_beam_size``). One temperature only: the fallback ladder would multiply
        the worst-case latency for little gain on short turns.
        """
        started = time.perf_counter()
        audio = np.asarray(audio, dtype=np.float32)
        if audio.size < _MIN_DECODE_S * SAMPLE_RATE:
            return Transcription("", NO_WORDS_LOGPROB, 1.0, (), time.perf_counter() - started)
        want_words = bool(word_timestamps)
        beam = 1 if partial else self.final_beam_size
        if not full_window:
            # Not on full-window decodes of speech over the agent (barge_in_full_window): their
            # confidence floor for telling "Wait." from a cough was calibrated unprompted.
            prompt = self._biased(prompt)
        fit = self.window == "fit" and not full_window
        if fit and audio.size / SAMPLE_RATE + self.fit_pad_s <= _WINDOW_S:
            return self._transcribe_fitted(audio, prompt, beam, want_words, started)
        segments, _info = self._model.transcribe(
            audio,
            language=self.language,
            beam_size=beam,
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            without_timestamps=True,
            word_timestamps=want_words,
            vad_filter=False,  # our own VAD already cut the turn
            no_speech_threshold=None,  # keep every segment; callers judge no_speech_prob
            log_prob_threshold=None,
            compression_ratio_threshold=None,
        )
        if audio.size <= _WINDOW_S * SAMPLE_RATE:
            # One 30 s window decoded without timestamp tokens yields one segment. Stop there:
            # with word timings faster-whisper would seek to the last word and decode the
            # trailing silence again (a second full pass that only yields "Thank you.").
            segments = list(itertools.islice(segments, 1))
        else:
            segments = [s for i, s in enumerate(segments) if i == 0 or not _trailing_hallucination(s)]
        texts: list[str] = []
        words: list[tuple[str, float, float]] = []
        probs: list[float] = []
        weighted = 0.0
        tokens = 0
        no_speech = []
        for seg in segments:
            texts.append(seg.text.strip())
            n = max(1, len(seg.tokens))
            weighted += seg.avg_logprob * n
            tokens += n
            no_speech.append(seg.no_speech_prob)
            for w in seg.words or ():
                words.append((w.word.strip(), float(w.start), float(w.end)))
                probs.append(float(w.probability))
        return Transcription(
            text=" ".join(t for t in texts if t),
            avg_logprob=weighted / tokens if tokens else NO_WORDS_LOGPROB,
            no_speech_prob=float(np.mean(no_speech)) if no_speech else 1.0,
            words=tuple(words),
            duration_s=time.perf_counter() - started,
            word_probs=tuple(probs),
        )

    def _biased(self, prompt: str | None) -> str | None:
        """The vocabulary first, then the caller's own committed words (which Whisper's
        223-token prompt limit keeps when it truncates from the front)."""
        prompt = prompt.strip() if prompt else ""
        if not self.bias_text:
            return prompt or None
        return f"{self.bias_text} {prompt}" if prompt else self.bias_text

    def _transcribe_fitted(
        self, audio: np.ndarray, prompt: str | None, beam: int, want_words: bool, started: float
    ) -> Transcription:
        """One greedy/beam decode over a window just long enough for ``audio``."""
        model, tok = self._model, self._tokenizer
        seconds = audio.size / SAMPLE_RATE
        # Below ~6 s the decoder grows unsure of one-word answers ("Yes." at -1.4 log-prob).
        window_s = min(_WINDOW_S, max(self.fit_min_window_s, float(np.ceil(seconds + self.fit_pad_s))))
        # Pad the waveform (not the features) with silence, as Whisper's training data was.
        padded = np.pad(audio, (0, int(window_s * SAMPLE_RATE) - audio.size))
        features = model.feature_extractor(padded)[:, : int(window_s * _FRAMES_PER_S)]
        encoded = model.encode(features)
        previous = tok.encode(" " + prompt.strip()) if prompt and prompt.strip() else []
        prompt_tokens = model.get_prompt(tok, previous, without_timestamps=True)
        budget = int(8 + self.fit_tokens_per_s * seconds)
        result = model.model.generate(
            encoded,
            [prompt_tokens],
            beam_size=beam,
            max_length=min(model.max_length, len(prompt_tokens) + budget),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
        words, word_tokens = tok.split_to_word_tokens(tokens) if tokens else ([], [])
        keep = trim_trailing_repeat(words)
        tokens = [t for wt in word_tokens[:keep] for t in wt]
        text = tok.decode(tokens).strip()
        avg_logprob = float(result.scores[0]) if tokens else NO_WORDS_LOGPROB
        timed: list[tuple[str, float, float]] = []
        probs: list[float] = []
        trimmed = keep < len(words)
        if (want_words or trimmed) and tokens:
            aligned = model.find_alignment(tok, [tokens], encoded, int(seconds * _FRAMES_PER_S))[0]
            for w in aligned:
                word = w["word"].strip()
                if timed and word and not any(c.isalnum() for c in word):
                    # "." is its own item here; attach it to its word, as faster-whisper does
                    prev = timed[-1]
                    timed[-1] = (prev[0] + word, prev[1], float(w["end"]))
                    continue
                timed.append((word, float(w["start"]), float(w["end"])))
                probs.append(float(w["probability"]))
            if probs and trimmed:
                # the score counted the cut-off loop too; use the kept words' own probabilities
                avg_logprob = float(np.mean(np.log(np.clip(probs, 1e-6, 1.0))))
        if not want_words:
            timed, probs = [], []
        return Transcription(
            text=text,
            avg_logprob=avg_logprob,
            no_speech_prob=float(result.no_speech_prob),
            words=tuple(timed),
            duration_s=time.perf_counter() - started,
            word_probs=tuple(probs),
        )


def bias_prompt(vocabulary: Sequence[str] | str | None) -> str:
    """Prompt text for a word list: "Chest pain, stroke, ..." reads like a clinical note, which
    is the register the words should be heard in. A string is used as it is."""
    if not vocabulary:
        return ""
    if isinstance(vocabulary, str):
        return vocabulary.strip()
    words = [w.strip() for w in vocabulary if w and w.strip()]
    return (", ".join(words) + ".").capitalize() if words else ""


def resolve_vocabulary(setting: str | None) -> tuple[str, ...]:
    """``PipelineConfig.asr_vocabulary`` (``VOICE_ASR_VOCABULARY``) as a word list.

    ``"rules"``: the clinical rule set's red-flag words (``clinical_rules.vocabulary()``, the
    only call voice/ makes into the rules for this; empty if they are not installed);
    ``"off"`` / ``""``: no bias; anything else: a comma-separated list of words.
    """
    value = (setting or "").strip()
    if value.lower() in ("", "off", "none", "0", "false", "no"):
        return ()
    if value.lower() == "rules":
        try:
            from voice.clinical import vocabulary
        except ImportError:
            return ()
        try:
            return tuple(vocabulary())
        except Exception:  # a rule-set problem must not stop speech recognition
            log.exception("clinical_rules.vocabulary() failed; ASR runs without the clinical bias")
            return ()
    return tuple(w.strip() for w in value.split(",") if w.strip())


def trim_trailing_repeat(words: list[str], min_tail: int = 2) -> int:
    """How many of ``words`` to keep when the text ends by starting itself over.

    A decoder that misses the end of a fitted window repeats: "Okay okay okay", or
    "I cut my finger while cooking. I cut my finger". The smallest period ``p`` for which
    every word after the first ``p`` repeats the text from its start (ignoring case and
    punctuation) is the real text. Tails shorter than ``min_tail`` words are kept unless
    the period is one word, so "help me please help" survives. Punctuation-only items
    (faster-whisper splits "." off as a word) are skipped when comparing.
    """
    content = [
        (i, n) for i, w in enumerate(words) if (n := "".join(c for c in w.lower() if c.isalnum() or c == "'"))
    ]
    norm = [n for _, n in content]
    for p in range(1, len(norm)):
        tail = norm[p:]
        if (len(tail) >= min_tail or p == 1) and all(w == norm[i % p] for i, w in enumerate(tail)):
            return content[p][0]
    return len(words)


def _trailing_hallucination(seg) -> bool:
    """A later segment decoded from the silence after the speech ("Thank you.", " .").

    With word timings faster-whisper seeks to the last word's end and decodes the rest
    of the window again; on trailing silence that yields Whisper's stock hallucinations,
    recognisable by a high no-speech probability and a low log-probability.
    """
    if not any(c.isalnum() for c in seg.text):
        return True
    return seg.no_speech_prob > 0.3 and seg.avg_logprob < -0.5


# --- local agreement --------------------------------------------------------------------


def _norm(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalnum() or c == "'")


class LocalAgreement:
    """Commits a word once two consecutive hypotheses agree on it (LocalAgreement-2).

    Hypotheses are word lists for the current *window* (audio after the window start,
    decoded with the words committed before the window as prompt). Committed words never
    change; ``text`` is committed words plus the latest hypothesis' uncommitted tail.
    """

    def __init__(self) -> None:
        self.committed: list[str] = []
        self.window_base = 0  # committed words that lie before the current window
        self._prev: list[str] | None = None
        self.tail: list[str] = []

    @property
    def in_window(self) -> int:
        return len(self.committed) - self.window_base

    def update(self, hyp: list[str]) -> list[str]:
        """Feed one hypothesis (window-relative words); return the newly committed words."""
        cw = self.in_window
        prev, self._prev = self._prev, hyp
        new: list[str] = []
        if prev is not None:
            agree = 0
            for a, b in zip(prev, hyp, strict=False):
                if _norm(a) != _norm(b) or not _norm(b):
                    break
                agree += 1
            if agree > cw:
                new = hyp[cw:agree]
                self.committed.extend(new)
        self.tail = hyp[self.in_window :]
        return new

    def force_commit(self, hyp: list[str], keep: int) -> None:
        """Commit all but the last ``keep`` words of ``hyp`` (window about to overflow)."""
        cw = self.in_window
        upto = max(cw, len(hyp) - keep)
        self.committed.extend(hyp[cw:upto])
        self.tail = hyp[upto:]

    def slide(self, remaining_hyp: list[str]) -> None:
        """Start a new window right after the committed words."""
        self.window_base = len(self.committed)
        self._prev = remaining_hyp
        self.tail = list(remaining_hyp)

    @property
    def stable_text(self) -> str:
        return " ".join(self.committed)

    @property
    def text(self) -> str:
        return " ".join(self.committed + self.tail)


# --- streaming transcriber --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamingConfig:
    partial_interval_ms: float = 400.0  # at most one partial per this much new audio
    min_audio_ms: float = 400.0  # no partial before this much turn audio
    max_window_s: float = 8.0  # beyond this, slide the window past the committed words
    hard_window_s: float = 24.0  # never decode more than this (Whisper's window is 30 s)
    final_prompt: str | None = None  # optional domain prompt for the final pass
    # Decode with Whisper's full 30 s window. Speech over the agent is judged by the decode's
    # confidence (a backchannel or a cough vs a real "Wait."), and that separation was
    # calibrated on the full window; a fitted window is less sure of one-word bursts.
    full_window: bool = False
    # A partial that falls due while the previous decode runs starts as soon as that one is
    # back (at the next frame), instead of at the next interval boundary. For bursts over the
    # agent, where the second partial usually decides: the first (~120 ms of speech) is
    # unsure, and waiting for the boundary after a 100-150 ms decode cost up to one interval.
    catch_up: bool = False


_default_executor: ThreadPoolExecutor | None = None
_default_lock = threading.Lock()


def default_executor() -> ThreadPoolExecutor:
    """One ASR thread per process unless the pipeline passes its own bounded executor."""
    global _default_executor
    with _default_lock:
        if _default_executor is None:
            _default_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        return _default_executor


@dataclass(slots=True)
class TranscriberStats:
    partial_decodes: int = 0
    skipped: int = 0  # partials that were due while the previous decode still ran
    partial_decode_s: float = 0.0  # total inference time of partials
    final_decode_s: float | None = None
    final_reused: bool = False  # the final reused a speculative decode of the same audio


class StreamingTranscriber:
    """One turn's transcription. Use from the event loop thread only.

    ``push`` audio as the segmenter produces it (16 kHz float32, the turn's audio from its
    pre-roll on); partial decodes are scheduled on ``executor`` and reported through
    ``on_partial`` (called on the loop) and :attr:`latest`. At a pause the pipeline may
    call :meth:`speculative_final` (the endpoint policy needs fresh words); :meth:`final`
    reuses that result when no audio came after it, else decodes the whole turn.
    """

    def __init__(
        self,
        recognizer: SpeechRecognizer,
        *,
        turn_id: int,
        executor: Executor | None = None,
        config: StreamingConfig | None = None,
        on_partial: Callable[[PartialTranscript], None] | None = None,
        audio_start: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recognizer = recognizer
        self.turn_id = turn_id
        self.executor = executor or default_executor()
        self.config = config or StreamingConfig()
        self.on_partial = on_partial
        self.audio_start = audio_start  # session time of the first pushed sample, if known
        self.clock = clock
        self.stats = TranscriberStats()
        self.latest: PartialTranscript | None = None
        self._rate = recognizer.sample_rate
        supports = recognizer.supports_partial  # transcribe takes partial / full_window (interfaces)
        # passed to every decode of this turn (partial, pause and final)
        self._window_kwargs = {"full_window": True} if supports and self.config.full_window else {}
        self._partial_kwargs = {"partial": True, **self._window_kwargs} if supports else {}
        self._buf = np.zeros(self._rate * 8, dtype=np.float32)
        self._n = 0
        self._window_start = 0  # sample index where the partial window starts
        self._agreement = LocalAgreement()
        self._inflight: asyncio.Future | None = None
        self._next_due = int(self.config.min_audio_ms * self._rate / 1000)
        self._interval = max(1, int(self.config.partial_interval_ms * self._rate / 1000))
        self._closed = False
        self._speculative: tuple[int, asyncio.Future] | None = None

    # -- feeding --

    @property
    def audio(self) -> np.ndarray:
        return self._buf[: self._n]

    def push(self, audio: np.ndarray) -> None:
        if self._closed:
            return
        audio = np.asarray(audio, dtype=np.float32)
        need = self._n + audio.size
        if need > self._buf.size:
            grown = np.empty(max(need, self._buf.size * 2), dtype=np.float32)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : need] = audio
        self._n = need
        if self._n < self._next_due:
            return
        if self._inflight is not None and not self._inflight.done():
            if self.config.catch_up:
                return  # still due: the first push after the decode is back starts it
            # CPU behind: drop the due partial(s) rather than queue decodes of stale audio.
            while self._n >= self._next_due:
                self.stats.skipped += 1
                self._next_due += self._interval
            return
        self._start_partial()

    def _start_partial(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        hard = int(cfg.hard_window_s * self._rate)
        if self._n - self._window_start > hard:
            self._window_start = self._n - hard  # cap: bounded cost even if nothing commits
        window = self._buf[self._window_start : self._n].copy()
        prompt = " ".join(self._agreement.committed[: self._agreement.window_base]) or None
        self._next_due = self._n + self._interval
        kwargs = dict(self._partial_kwargs)
        if kwargs:
            # Word timings add ~5-10% CPU per decode: only ask when the window may slide.
            kwargs["word_timestamps"] = window.size / self._rate > cfg.max_window_s
        call = _Call(self.recognizer, window, prompt, kwargs)
        fut = loop.run_in_executor(self.executor, call)
        self._inflight = fut
        fut.add_done_callback(lambda f, start=self._window_start, n=self._n: self._on_partial(f, start, n))

    def _on_partial(self, fut: asyncio.Future, window_start: int, n: int) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.warning("partial ASR decode failed: %s", type(exc).__name__)
            return
        result: Transcription = fut.result()
        self.stats.partial_decodes += 1
        self.stats.partial_decode_s += result.duration_s
        if self._closed or window_start != self._window_start:
            return  # turn finished, or the window moved while this decode ran
        if result.words:
            hyp = [w for w, _, _ in result.words if w]
        else:
            hyp = result.text.split()
        agreement = self._agreement
        agreement.update(hyp)
        self._maybe_slide(result, hyp, window_start, n)
        event = PartialTranscript(
            turn_id=self.turn_id,
            text=agreement.text,
            stable_text=agreement.stable_text,
            avg_logprob=result.avg_logprob,
            no_speech_prob=result.no_speech_prob,
            t=self.clock(),
        )
        previous = self.latest
        self.latest = event
        if previous is None or (previous.text, previous.stable_text) != (event.text, event.stable_text):
            if self.on_partial is not None:
                self.on_partial(event)

    def _maybe_slide(self, result: Transcription, hyp: list[str], window_start: int, n: int) -> None:
        cfg = self.config
        agreement = self._agreement
        window_s = (n - window_start) / self._rate
        if window_s <= cfg.max_window_s or not result.words or len(result.words) != len(hyp):
            return
        cw = agreement.in_window
        if cw == 0 and window_s > cfg.hard_window_s * 0.8:
            agreement.force_commit(hyp, keep=2)
            cw = agreement.in_window
        if cw == 0 or cw > len(hyp):
            return
        # Cut between the last committed word and the next one (timestamps are ±0.1 s).
        end = result.words[cw - 1][2]
        cut = (end + result.words[cw][1]) / 2 if cw < len(hyp) else end + 0.05
        self._window_start = window_start + int(cut * self._rate)
        agreement.slide(hyp[cw:])

    async def wait_idle(self) -> None:
        """Wait for the partial decode in flight, if any (tests, orderly shutdown)."""
        if self._inflight is not None:
            await asyncio.wait([self._inflight])

    # -- end of turn --

    async def speculative_final(self) -> Transcription:
        """Final-quality decode of the audio so far (for the endpoint policy at a pause).

        Concurrent calls for the same amount of audio share one decode.
        """
        return await asyncio.shield(self.start_speculative_final())

    def start_speculative_final(self) -> asyncio.Future:
        """:meth:`speculative_final` of the audio pushed so far, started now (the decode is
        queued at once; its future is shared by calls for the same amount of audio)."""
        if self._speculative is not None and self._speculative[0] == self._n:
            return self._speculative[1]
        loop = asyncio.get_running_loop()
        # Word probabilities let the endpoint policy distrust a guessed last word.
        kwargs = {"word_timestamps": True, **self._window_kwargs} if self._partial_kwargs else {}
        call = _Call(self.recognizer, self.audio.copy(), self.config.final_prompt, kwargs)
        fut = loop.run_in_executor(self.executor, call)
        self._speculative = (self._n, fut)
        return fut

    def speculative_covers(self, speech_end: float) -> bool:
        """Whether the last speculative decode included audio up to ``speech_end``."""
        if self._speculative is None:
            return False
        n = self._speculative[0]
        if n == self._n:
            return True
        return self.audio_start is not None and self.audio_start + n / self._rate >= speech_end

    async def final(self, *, speech_start: float, speech_end: float) -> FinalTranscript:
        """Close the turn and return its transcript (reusing a speculative decode if it
        already covered the speech)."""
        self._closed = True
        result: Transcription | None = None
        if self._speculative is not None and self.speculative_covers(speech_end):
            fut = self._speculative[1]
            await asyncio.wait([fut])
            if not fut.cancelled() and fut.exception() is None:
                result = fut.result()
                self.stats.final_reused = True
        if result is None:
            loop = asyncio.get_running_loop()
            call = _Call(self.recognizer, self.audio.copy(), self.config.final_prompt, self._window_kwargs)
            result = await loop.run_in_executor(self.executor, call)
        self.stats.final_decode_s = result.duration_s
        return FinalTranscript(
            turn_id=self.turn_id,
            text=result.text,
            avg_logprob=result.avg_logprob,
            no_speech_prob=result.no_speech_prob,
            speech_start=speech_start,
            speech_end=speech_end,
            t=self.clock(),
        )

    def close(self) -> None:
        """Abandon the turn: late partial results are dropped."""
        self._closed = True


class _Call:
    """A picklable-free closure for the executor (keeps the lambda out of tracebacks)."""

    __slots__ = ("recognizer", "audio", "prompt", "kwargs")

    def __init__(
        self, recognizer: SpeechRecognizer, audio: np.ndarray, prompt: str | None, kwargs: dict
    ) -> None:
        self.recognizer = recognizer
        self.audio = audio
        self.prompt = prompt
        self.kwargs = kwargs

    def __call__(self) -> Transcription:
        return self.recognizer.transcribe(self.audio, prompt=self.prompt, **self.kwargs)
