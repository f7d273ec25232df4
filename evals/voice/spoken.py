"""Spoken dev vignettes through the real pipeline, scored on what the clinician sees.

    python -m evals.voice.spoken [--n 40] [--all-emergencies] [--voices piper,espeak]
                                [--bias rules,off] [--out DIR]

Each vignette's first statement is spoken by a synthetic voice (Piper, espeak-ng; cached in
``var/asr_clinical/``), streamed into a real ``VoiceSession`` (webrtcvad, streaming Whisper
with partials, endpointing, the real ``clinical_rules.TriageInterview`` with the vignette's
context; the LLM is off: it never decides urgency and would only slow the run), then comfort
noise until the agent has answered. Scored on the call's assessment after that first turn -
the level and escalation the clinician dashboard shows, after the learned emergency scorer has
read each final statement as the live host has it do (voice.safety_net_runner; the rules' own
level is kept beside it as ``rules_level``) - against the vignette's expected level:

* ``emergency_1_2``: emergencies (expected 1-2) that reached level 1-2 (the goal: 100%);
* ``escalated``: level-1 emergencies for which an escalation was raised (clinician alerted);
* ``no_level``: calls with no level after the first statement;
* ``level_accuracy`` (coarse 1-2 / 3 / 4 / 5) over all, and the transcripts that lost a flag.

Audio goes in as fast as the pipeline takes it (latencies mean nothing here), the tail in
real time so the endpoint and the final decode happen as in a call.
Writes ``bench-results/spoken_eval-<time>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from evals.voice.asr_clinical import OUT_DIR, VOICES, Item, pinned_ids, sample_items, speech, usable_items
from voice.audio import float32_to_pcm16


@dataclass
class SpokenOutcome:
    id: str
    voice: str
    bias: str
    expected: int
    level: int | None
    escalated: bool
    heard: str
    said: str
    rules_level: int | None = None  # before the learned scorer's raise-only pass


def coarse(level: int | None) -> str:
    return "?" if level is None else "1-2" if level <= 2 else str(level)


async def speak_once(
    runtime, config, item: Item, pcm: bytes, *, tail_s: float = 30.0, ruleset=None
) -> tuple[int | None, bool, str, int | None]:
    """One call: greeting, the statement, noise until the agent answered.
    (level, escalated, transcript, the rules' level before the learned scorer)."""
    from clinical_rules import TriageInterview
    from evals.voice.simulate import SimulatedClient, comfort_noise, stream_pcm
    from voice.events import AgentReplyFinished, AgentReplyStarted, EscalationRaised, FinalTranscript
    from voice.pipeline import VoiceSession
    from voice.safety_net_runner import SafetyNetRunner

    client = SimulatedClient(instant_playback=True)
    interview = TriageInterview(context=item.context, ruleset=ruleset)
    session = VoiceSession(runtime, interview, client.emit, config)
    client.attach(session)
    try:
        await session.start()
        await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0, timeout=60)
        await stream_pcm(session, pcm, realtime=False)

        def answered() -> bool:
            finals = [e for e in client.of(FinalTranscript) if e.turn_id > 0]
            return bool(finals) and any(
                isinstance(e, AgentReplyStarted) and e.turn_id >= finals[0].turn_id for e in client.events
            )

        deadline = time.monotonic() + tail_s
        seed = 0
        while not answered() and time.monotonic() < deadline:
            seed += 1
            await stream_pcm(session, comfort_noise(200, seed=seed), realtime=True)
        finals = [e.text for e in client.of(FinalTranscript) if e.turn_id > 0]
        a = interview.assessment
        rules_level = int(a.level) if a.level is not None else None
        runner = SafetyNetRunner(interview, _ignore_hit)  # as triage/live.py feeds it each final
        for text in finals:
            await runner.observe(text, final=True)
        a = interview.assessment
        level = int(a.level) if a.level is not None else None
        escalated = bool(client.of(EscalationRaised)) or interview.escalated
        return level, escalated, " | ".join(finals), rules_level
    finally:
        await session.end("evaluation_done")
        client.close()


async def _ignore_hit(hit, on_partial: bool, ms: float) -> None:
    """The evaluation scores levels; the dashboard alert a hit would send is not needed here."""


def metrics(outcomes: Sequence[SpokenOutcome]) -> dict:
    emerg = [o for o in outcomes if o.expected <= 2]
    level1 = [o for o in emerg if o.expected == 1]  # escalation (the clinician alert) is for level 1
    n = len(outcomes)
    caught = [o for o in emerg if o.level is not None and o.level <= 2]
    by_rules = [o for o in emerg if o.rules_level is not None and o.rules_level <= 2]
    return {
        "n": n,
        "n_emergency": len(emerg),
        "emergency_1_2": round(len(caught) / len(emerg), 4) if emerg else 1.0,
        "emergency_1_2_rules_only": round(len(by_rules) / len(emerg), 4) if emerg else 1.0,
        "escalated": round(sum(o.escalated for o in level1) / len(level1), 4) if level1 else 1.0,
        "no_level": sum(o.level is None for o in outcomes),
        "level_accuracy": round(sum(coarse(o.level) == coarse(o.expected) for o in outcomes) / n, 4)
        if n
        else 1.0,
        "lost": [asdict(o) for o in emerg if o not in caught],
    }


async def run_async(
    items: Sequence[Item], voices: Sequence[str], biases: Sequence[str], *, verbose: bool = True
) -> dict[str, dict]:
    from clinical_rules import load_ruleset
    from voice.asr import bias_prompt, resolve_vocabulary
    from voice.config import PipelineConfig
    from voice.runtime import VoiceRuntime

    config = PipelineConfig.from_env(llm_backend="none")
    rs = load_ruleset()  # once: the run is long, and the files may change while it runs
    pcm = {(v, it.id): float32_to_pcm16(speech(it.text, v)) for v in voices for it in items}
    runtime = await asyncio.to_thread(VoiceRuntime.load, config)
    results: dict[str, dict] = {}
    try:
        for bias in biases:
            # the same loaded model, with or without the clinical prompt (as asr_vocabulary sets it)
            runtime.recognizer.bias_text = bias_prompt(resolve_vocabulary(bias))
            for voice in voices:
                outcomes = []
                for it in items:
                    level, escalated, heard, rules_level = await speak_once(
                        runtime, config, it, pcm[(voice, it.id)], ruleset=rs
                    )
                    outcomes.append(
                        SpokenOutcome(
                            it.id, voice, bias, it.expected, level, escalated, heard, it.text, rules_level
                        )
                    )
                m = metrics(outcomes)
                m["outcomes"] = [asdict(o) for o in outcomes]
                results[f"{voice}/{bias}"] = m
                if verbose:
                    print(_row(voice, bias, m), flush=True)
    finally:
        runtime.close()
    return results


HEADER = (
    f"{'voice':7} {'bias':5} {'n':>3} {'emerg':>5} {'to 1-2':>7} {'(rules)':>7} {'L1 alerted':>10} "
    f"{'no level':>8} {'coarse acc':>10}"
)


def _row(voice: str, bias: str, m: dict) -> str:
    return (
        f"{voice:7} {bias:5} {m['n']:>3} {m['n_emergency']:>5} {m['emergency_1_2']:>7.1%} "
        f"{m['emergency_1_2_rules_only']:>7.1%} {m['escalated']:>10.1%} "
        f"{m['no_level']:>8} {m['level_accuracy']:>10.1%}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.voice.spoken", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--n", type=int, default=40, help="vignettes (3/4 emergencies), as evals.voice.asr_clinical"
    )
    ap.add_argument(
        "--all-emergencies", action="store_true", help="every dev emergency the rules catch on the text"
    )
    ap.add_argument("--voices", default=",".join(VOICES))
    ap.add_argument("--bias", default="rules", help="comma-separated: rules, off")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument(
        "--ids",
        default=None,
        help="these vignette ids (comma-separated, or a evals.voice.asr_clinical report .json)",
    )
    args = ap.parse_args(argv)
    split = lambda s: [p for p in s.split(",") if p]  # noqa: E731
    from clinical_rules import load_ruleset

    rs = load_ruleset()
    if args.ids:
        items = usable_items(pinned_ids(args.ids), rs)
    elif args.all_emergencies:
        items = [it for it in sample_items(10_000, n_emergency=10_000, ruleset=rs) if it.emergency]
    else:
        items = sample_items(args.n, n_emergency=min(args.n, round(args.n * 0.75)), ruleset=rs)
    print(HEADER)
    results = asyncio.run(run_async(items, split(args.voices), split(args.bias)))
    for key, m in results.items():
        for miss in m["lost"]:
            print(
                f"  {key} {miss['id']} lost (level {miss['level']}): said {miss['said']!r} heard {miss['heard']!r}"
            )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"spoken_eval-{time.strftime('%Y%m%dT%H%M%S')}.json"
        path.write_text(
            json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": results}, indent=1)
        )
        print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
