"""Classes blind round 12 exposed (rule set 2026.12.2), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are X001-X048 in dev.yaml).

Safety classes assert "at least" (a level this urgent or more); benign look-alikes assert the
exact level; the guards assert that "it settled / fine now" never clears an escalating red flag.
"""

import pytest

from tests.clinical_rules.levels import CHILD, OTHER
from tests.clinical_rules.levels import level_of as _level

OLDER = {"subject": "other", "age_band": "65_plus"}


# ---------------------------------------------------------------- safety: at least this urgent
AT_LEAST = [
    # a child and a household product, battery or someone else's medicine (poison-centre advice)
    (
        "ingestion",
        "my daughter is three and she bit into a laundry capsule, there's blue stuff round her mouth and she keeps retching",
        CHILD,
        2,
    ),
    (
        "ingestion",
        "my son's four, I found him with the bleach bottle and he's drunk some, he's crying and says his mouth burns",
        CHILD,
        2,
    ),
    (
        "ingestion",
        "my toddler was sucking on the drain cleaner lid and now he's drooling and won't eat",
        CHILD,
        2,
    ),
    (
        "ingestion",
        "my little girl got hold of my vape refill and chewed the bottle, she's been sick once",
        CHILD,
        2,
    ),
    (
        "ingestion",
        "my two year old got into my mum's heart tablets and chewed a couple, he seems fine at the moment",
        CHILD,
        2,
    ),
    (
        "ingestion",
        "my son's two, he bit into a dishwasher tablet and now he's wheezing and struggling to breathe",
        CHILD,
        1,
    ),
    ("ingestion", "my daughter drank some e liquid and she's really drowsy and hard to wake", CHILD, 1),
    # diabetic ketoacidosis in lay words (NICE NG18, NHS DKA)
    (
        "dka",
        "my son's twelve, he's been weeing all the time and drinking loads for a couple of weeks and now he's being sick and has tummy pain",
        CHILD,
        2,
    ),
    (
        "dka",
        "my teenage daughter is always so thirsty and up in the night weeing, she's lost weight and today her breathing is deep and she's vomiting",
        CHILD,
        2,
    ),
    (
        "dka",
        "I'm type 1 diabetic and I've been throwing up since last night, my tummy hurts and I'm weeing loads",
        {},
        2,
    ),
    # missed dialysis with palpitations or weakness (high potassium)
    (
        "dialysis",
        "I'm on dialysis and I missed my session yesterday, my heart keeps skipping and racing and I feel weak all over",
        {},
        1,
    ),
    (
        "dialysis",
        "my dad has kidney failure and skipped his dialysis on friday, now his legs have gone weak and he feels his heart fluttering",
        OTHER,
        1,
    ),
    (
        "dialysis",
        "my wife missed dialysis this week and she's really breathless and her heart's pounding",
        OTHER,
        1,
    ),
    # older adult newly off their legs and newly confused (NICE NG51 new altered mental state)
    (
        "off_legs",
        "my grandad is ninety and since this morning he can't stand up and he's confused, doesn't know where he is",
        OLDER,
        1,
    ),
    (
        "off_legs",
        "my dad is 79, he's gone off his legs today and he's talking nonsense which isn't like him",
        OTHER,
        1,
    ),
    ("off_legs", "my elderly mum can't get out of bed this morning and she's all muddled", OTHER, 1),
    # chest-wall words do not hide cardiac or PE features
    (
        "chest_wall_guard",
        "I'm 62 and my chest hurts when I press on it but I'm sweating and it goes down my left arm",
        {},
        2,
    ),
    (
        "chest_wall_guard",
        "I'm 28, my chest is sore when I press on my ribs but I also feel short of breath and I had an operation last week",
        {},
        2,
    ),
    (
        "chest_wall_guard",
        "I'm 35, after lifting my chest hurts when I twist, and my heart has been racing and I feel clammy",
        {},
        2,
    ),
    # palpitations that keep coming back, or back ache with cauda equina signs, are not "settled"
    ("settled_guard", "I've had palpitations on and off all day and they keep happening", {}, 3),
    ("settled_guard", "my back hurts since lifting and now I can't feel my bottom and I can't wee", {}, 2),
    (
        "settled_guard",
        "my back's been aching for a month since I lifted the sofa, it's not getting any better",
        {},
        4,
    ),
    # "it settled / fine now" never clears an escalating red flag
    ("settled_guard", "he had a seizure but he's fine now", OTHER, 1),
    ("settled_guard", "the chest pain went off but I was sweating and it went down my arm", {}, 2),
    ("settled_guard", "it settled but I'm still struggling to breathe", {}, 2),
    ("settled_guard", "my face drooped for a few minutes and it went off, I'm fine now", {}, 1),
    # a faint is not a red flag on its own (URG-FAINT-001, level 3), but "fine now" must not lower it
    ("settled_guard", "I had a dizzy turn and passed out, I'm fine now", {}, 3),
]


@pytest.mark.parametrize(
    ("cls", "text", "ctx", "worst"), AT_LEAST, ids=[f"{c}-{i}" for i, (c, *_r) in enumerate(AT_LEAST)]
)
def test_safety_classes_reach_at_least(rs, cls, text, ctx, worst):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= worst, (level, a.rule_ids)


# ---------------------------------------------------------------- benign look-alikes: exact level
EXACT = [
    # chest-wall pain in someone under 40, reproduced by pressing or twisting (NICE CG95): GP, not ED
    (
        "chest_wall",
        "I'm 24, I pulled something in my chest at the gym, it only hurts when I press on it or twist, breathing is fine",
        {},
        4,
    ),
    (
        "chest_wall",
        "I'm thirty two and after carrying the shopping my ribs are sore, it hurts when I touch the spot, no breathlessness",
        {},
        4,
    ),
    # a strain with its cause said (press ups) is URG-CHEST-013's self-care since 2026.12.6
    (
        "chest_wall",
        "I'm 19 and I strained my chest doing press ups, it's tender if I push on it, I can breathe fine",
        {},
        5,
    ),
    # heartburn after a meal, eased by an antacid, young (NHS heartburn)
    (
        "heartburn",
        "I'm 27, after a big spicy takeaway my chest is burning with a sour taste in my mouth, a rennie settled it",
        {},
        5,
    ),
    (
        "heartburn",
        "I'm twenty five and I've got indigestion after a huge pizza, burning in my chest, the antacid helped",
        {},
        5,
    ),
    (
        "heartburn",
        "I'm 33 and I've got heartburn after dinner, acid coming up into my throat, gaviscon eased it",
        {},
        5,
    ),
    # an animal nip or scratch that drew no blood (NICE NG184)
    (
        "nip",
        "my cat scratched my arm, just a red scratch, it didn't bleed and my tetanus is up to date",
        {},
        5,
    ),
    ("nip", "our puppy nipped my hand playing, barely broke the skin, no blood", {}, 5),
    ("nip", "the neighbour's dog nipped my ankle, its teeth grazed me, didn't draw blood", {}, 5),
    # croup that settled, child well now (NHS croup)
    (
        "croup",
        "my daughter's three and had a barking cough in the night with noisy breathing, it went off when we opened the window to the cool air, she's playing fine now",
        CHILD,
        5,
    ),
    (
        "croup",
        "my son had a seal like cough last night and a bit of noisy breathing but it settled, today he's eating and running around as normal",
        CHILD,
        5,
    ),
    # a barking cough still there, breathing quiet: mild croup, a same-day steroid dose since
    # 2026.12.7 (NICE CKS croup; NHS croup asks for an urgent GP appointment); settled croup stays 5
    (
        "croup",
        "my little boy's got a barking cough but no noisy breathing, he's fine now and playing happily",
        CHILD,
        3,
    ),
    # mild asthma relieved at once by the reliever (BTS/SIGN)
    (
        "asthma",
        "I've got asthma and felt a bit wheezy this morning, took two puffs of my blue inhaler and it sorted it straight away, fine now",
        {},
        5,
    ),
    (
        "asthma",
        "I'm asthmatic and was a bit wheezy after a run, used my reliever once and I'm fine now",
        {},
        5,
    ),
    ("asthma", "my asthma flared slightly, I used my ventolin once and I'm back to normal", {}, 5),
    # the caller's usual tension-type headache, red flags denied (NICE CG150)
    (
        "headache",
        "I've got my usual headache, like a band round my head, I always get them when I'm stressed, no sickness and my eyes are fine",
        {},
        5,
    ),
    (
        "headache",
        "it's one of my normal tension headaches, same as I always get after a long week at work, paracetamol is helping",
        {},
        5,
    ),
    (
        "headache",
        "I get these headaches when I'm stressed, tight across my forehead, same as usual, nothing different",
        {},
        5,
    ),
    # a brief postural dizzy turn that passed (NHS dizziness)
    (
        "dizzy",
        "I'm 22 and I got a bit lightheaded when I stood up quickly, it passed after a few seconds, no chest pain, I'm fine now",
        {},
        5,
    ),
    (
        "dizzy",
        "I went dizzy getting up out of the bath, it went off in a moment, I didn't pass out and I'm totally fine now",
        {},
        5,
    ),
    (
        "dizzy",
        "I felt woozy when I got up from bed this morning, it settled straight away, no palpitations, I feel fine now",
        {},
        5,
    ),
    # a racing heart after caffeine that has settled, red flags denied (NHS palpitations)
    (
        "palpitations",
        "my heart was racing after two energy drinks but it's settled now, no chest pain and I'm fine",
        {},
        5,
    ),
    (
        "palpitations",
        "I had palpitations after a big coffee this morning, it passed within a few minutes, no dizziness, I feel fine now",
        {},
        5,
    ),
    (
        "palpitations",
        "my heart was pounding after the espresso, that's settled and I'm fine now, no breathlessness",
        {},
        5,
    ),
    # back ache after lifting or gardening, red flags denied (NHS back pain)
    (
        "back",
        "I've got a bit of a backache since digging the garden at the weekend, no numbness, no problems weeing, no fever",
        {},
        5,
    ),
    (
        "back",
        "my lower back is sore after lifting boxes yesterday, I can walk fine and the toilet is normal",
        {},
        5,
    ),
    (
        "back",
        "my back's been stiff since moving furniture on saturday, ibuprofen helps, no leg numbness",
        {},
        5,
    ),
    # chronic dry itchy hand rash, no fever: GP (NHS eczema)
    (
        "hand_rash",
        "I've had dry cracked itchy skin on my hands for six weeks, the moisturiser isn't helping, no fever, otherwise well",
        {},
        4,
    ),
    (
        "hand_rash",
        "my hands have an itchy dry rash for about a month, no temperature, creams not working",
        {},
        4,
    ),
    ("hand_rash", "itchy dry patches on both hands for three weeks, no fever, I'm fine otherwise", {}, 4),
    # both ankles swollen for days or weeks, breathlessness and chest pain denied: GP (NHS oedema)
    (
        "ankles",
        "my dad is 80 and both his ankles have been puffy for two weeks, he's not breathless, no chest pain",
        OTHER,
        4,
    ),
    (
        "ankles",
        "I'm 70 and my feet and ankles have been swollen for a few weeks by the evening, no shortness of breath",
        {},
        4,
    ),
    (
        "ankles",
        "my nan's ankles have been a little swollen both sides for about a month, no chest pain, she's breathing fine",
        OTHER,
        4,
    ),
    # heartburn for weeks or months wanting a check: GP (NHS heartburn, NICE CG184)
    (
        "heartburn_weeks",
        "I've had heartburn on and off for about three months, rennies help, swallowing is fine, I'd like it checked",
        {},
        4,
    ),
    (
        "heartburn_weeks",
        "I'm 45 and I've been getting acid reflux most nights for six weeks, no weight loss",
        {},
        4,
    ),
    (
        "heartburn_weeks",
        "heartburn nearly every day for two months now, the chemist stuff helps but it keeps coming back",
        {},
        4,
    ),
]


@pytest.mark.parametrize(
    ("cls", "text", "ctx", "expected"), EXACT, ids=[f"{c}-{i}" for i, (c, *_r) in enumerate(EXACT)]
)
def test_benign_lookalikes_get_their_level(rs, cls, text, ctx, expected):
    level, a = _level(rs, text, ctx)
    assert level == expected, (level, a.rule_ids)


def test_every_class_has_at_least_three_wordings():
    counts: dict[str, int] = {}
    for cls, *_rest in AT_LEAST + EXACT:
        counts[cls] = counts.get(cls, 0) + 1
    assert all(n >= 3 for n in counts.values()), counts


def test_settled_rule_cannot_touch_escalating_rules(rs):
    """The 'settled' mechanism works only by suppressing non-escalating baselines; the loader
    refuses suppression of an escalating rule, so a red flag always survives it."""
    settled = next(r for r in rs.rules if r.id == "URG-SETTLED-001")
    by_id = {r.id: r for r in rs.rules}
    assert settled.suppresses and not any(by_id[s].escalate for s in settled.suppresses)
