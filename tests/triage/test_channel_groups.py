"""Dashboard group messages are built in one place (triage/channel_groups.py): their keys are
what the dashboard consumer reads (triage/consumers/dashboard.py), pinned here."""

from triage import channel_groups as groups


def test_session_changed_names_the_session_and_the_event():
    assert groups.session_changed("abc", "FinalTranscript") == {
        "type": "session.changed",
        "session_id": "abc",
        "event": "FinalTranscript",
    }


def _alert(**extra):
    return groups.escalation_raised(
        "abc",
        turn_id=3,
        level=1,
        disposition="emergency",
        rule_ids=["RF-1"],
        reasons=[{"why": "chest pain"}],
        on_partial=True,
        raised_mono=1.5,
        raised_wall=1700000000.0,
        host="node-a",
        **extra,
    )


def test_escalation_raised_by_the_rules():
    assert list(_alert().items()) == [
        ("type", "escalation.raised"),
        ("session_id", "abc"),
        ("turn_id", 3),
        ("level", 1),
        ("disposition", "emergency"),
        ("rule_ids", ["RF-1"]),
        ("reasons", [{"why": "chest pain"}]),
        ("on_partial", True),
        ("raised_mono", 1.5),
        ("raised_wall", 1700000000.0),
        ("host", "node-a"),
    ]


def test_a_safety_net_alert_says_its_kind_after_its_type():
    alert = _alert(kind="safety_net")
    assert list(alert)[:3] == ["type", "kind", "session_id"]
    assert alert["kind"] == "safety_net" and alert["type"] == groups.ESCALATION_RAISED
    assert {k: v for k, v in alert.items() if k != "kind"} == _alert()
