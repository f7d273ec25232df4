"""Complaint-taxonomy coverage (issue 11 part 1): every complaint of the adopted list (CEDIS,
condensed, rulesets/default/complaints.yaml) has a protocol and dev vignettes for its typical
presentation, an atypical one and a trap."""

from clinical_rules.coverage import KINDS, build, load_taxonomy, main, problems


def test_every_listed_complaint_has_a_protocol_and_typical_atypical_trap_vignettes(rs):
    assert problems(rs) == []


def test_taxonomy_is_the_cited_list_grouped_by_its_categories(rs):
    tax = load_taxonomy()
    assert tax.source in rs.provenance  # cited like every rule
    groups = {c.group for c in tax.complaints}
    assert {"cardiovascular", "respiratory", "neurologic", "gastrointestinal", "genitourinary", "ob_gyn", "ent",
            "eye", "skin", "musculoskeletal", "trauma", "mental_health", "substance", "environmental", "general",
            "paediatric"} <= groups  # fmt: skip
    assert len(tax.complaints) >= 60
    assert all(c.cedis for c in tax.complaints)


def test_a_complaint_without_protocol_or_vignettes_is_reported(rs):
    from clinical_rules.coverage import Taxonomy, TaxonomyComplaint

    tax = Taxonomy("cedis", "test", (TaxonomyComplaint("made_up", "general", "no_such_protocol", ("X",)),),
                   frozenset())  # fmt: skip
    found = problems(
        rs, tax, [("V1", "made_up", "typical"), ("V2", "unknown_thing", "atypical"), ("V3", "made_up", "odd")]
    )
    assert any("no_such_protocol" in p for p in found)
    assert any("no dev vignette of kind atypical, trap" in p for p in found)
    assert any("unknown taxonomy complaint 'unknown_thing'" in p for p in found)
    assert any("kind must be one of" in p for p in found)
    # a declared known gap is allowed, and must be removed once covered
    gap = Taxonomy("cedis", "test", tax.complaints, frozenset({"made_up"}))
    assert not any("no dev vignette" in p for p in problems(rs, gap, [("V1", "made_up", "typical")]))
    full = [("V1", "made_up", k) for k in KINDS]
    assert any("remove it from vignettes_pending" in p for p in problems(rs, gap, full))


def test_rules_are_listed_per_protocol(rs):
    rows = {r.complaint.id: r for r in build(rs)}
    assert "RF-CARDIAC-001" in rows["chest_pain_cardiac"].rules
    assert all(
        rule.complaint == "chest_pain" for rule in rs.rules if rule.id in rows["chest_pain_cardiac"].rules
    )


def test_coverage_command_prints_the_chain(rs, capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "chest_pain_cardiac" in out and "-> chest_pain" in out and "typical: D001" in out
    assert "Fully covered" in out
