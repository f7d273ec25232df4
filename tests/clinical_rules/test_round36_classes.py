"""Families blind rounds 35 and 36 exposed (both scored once at rule set 2026.12.26, fixed in
2026.12.28), each tested on sibling wordings written from the guidance, none of them the rounds' own
sentences (those are AK501-AK548 and AL601-AL648 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from clinical_rules.engine import analyse
from clinical_rules.facts import heart_rates
from tests.clinical_rules.levels import level_of as _level
from tests.clinical_rules.levels import rule_ids as _rules

ADULT = {"age_band": "18_to_64"}
SELF = {}
OTHER = {"subject": "other", "age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}
TODDLER = {"subject": "child", "age_band": "3_months_to_2_years"}
NEWBORN = {"subject": "child", "age_band": "under_3_months"}


# ---------------------------------------------------------------- a. a fast pulse read off a device
@pytest.mark.parametrize(
    ("said", "bpm"),
    [
        ("my watch is showing one seventy five", 175.0),
        ("my heart rate is 162 on the fitbit", 162.0),
        ("the monitor says his pulse is a hundred and fifty", 150.0),
        ("the watch is reading one sixty, one sixty five", 165.0),
    ],
)
def test_a_heart_rates_are_read_off_watches_and_monitors(rs, said, bpm):
    assert max(v.value for v in heart_rates(rs.normaliser(said))) == bpm


@pytest.mark.parametrize(
    "said",
    [
        "my blood pressure was 150 over 95",  # a blood pressure, not a pulse
        "I'm 160 centimetres and my heart is fine",
        "I walked 150 steps and my heart was pounding",
        "my heart has been racing for two hours",  # no number at all
    ],
)
def test_a_guard_numbers_that_are_not_a_pulse(rs, said):
    assert [v.value for v in heart_rates(rs.normaliser(said)) if v.value >= 140] == []


@pytest.mark.parametrize(
    "text",
    [
        "my apple watch says my heart rate is 190 and it's been like that for half an hour, I feel a bit off",
        "sitting on the sofa and my pulse is one sixty, it won't come down",
        "my heart is going that fast, the fitbit says 175, I'm just resting",
    ],
)
def test_a_a_fast_resting_pulse_is_seen_now(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


def test_a_guard_a_fast_pulse_while_exercising_is_not_this(rs):
    level, a = _level(rs, "my watch said 172 during my run this morning and I feel fine now", ADULT)
    assert "URG-PALP-020" not in _rules(a), a.reasons


def test_a_guard_a_toddlers_pulse_is_judged_for_the_age(rs):
    level, a = _level(rs, "her heart rate on the monitor is 150, she's two and has a cold", TODDLER)
    assert "URG-PALP-020" not in _rules(a), a.reasons


def test_a_a_heart_beating_too_fast_in_words_is_palpitations(rs):
    level, a = _level(rs, "my heart is beating very much fast and I feel dizzy", ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- b. mastitis with flu-like aches
@pytest.mark.parametrize(
    "text",
    [
        "I'm feeding my three week old and my left boob is red, hot and hard and I feel like I've got the flu",
        "had the baby ten days ago, breastfeeding, one breast is all red and sore and I'm shivery and achy",
    ],
)
def test_b_mastitis_with_flu_like_aches_is_same_day_not_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 3, a.reasons


def test_b_guard_a_fever_after_birth_without_a_breast_infection_is_still_an_emergency(rs):
    level, a = _level(rs, "I had my baby a week ago and now I've got a fever and the shivers", ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. bleeding that has stopped
def test_c_a_deep_cut_that_bled_a_lot_but_has_mostly_stopped_is_same_day(rs):
    level, a = _level(
        rs,
        "I sliced my finger on a bread knife, blood everywhere at first, but after pressing it it's nearly "
        "stopped, it's a deep one though",
        ADULT,
    )
    assert level == 3, a.reasons


def test_c_guard_bleeding_that_will_not_stop_is_still_999(rs):
    level, a = _level(
        rs, "I cut my arm on glass and there's blood everywhere, it won't stop even with pressure", ADULT
    )
    assert level == 1, a.reasons


def test_c_guard_a_tool_slipping_is_not_a_fall(rs):
    a = analyse(rs, "the chisel slipped and went into my thumb")
    assert "fall" not in {m.concept for m in a.mentions}


# ---------------------------------------------------------------- d. despair with no plan
def test_d_cant_go_on_with_no_plan_and_no_intent_is_same_day_crisis_care(rs):
    level, a = _level(
        rs,
        "I can't carry on like this anymore, I've been so down, but I haven't got a plan and I don't think "
        "I'd do anything, I just need to talk to someone",
        ADULT,
    )
    assert level == 3, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I just can't go on anymore",
        "I can't keep going like this, I've had enough",
    ],
)
def test_d_guard_cant_go_on_without_a_safety_answer_is_still_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- e. "worst pain" that is not a headache
@pytest.mark.parametrize(
    "text",
    [
        "my wisdom tooth is the worst pain of my life, my gum's all swollen, I can swallow fine",
        "worst pain I've ever had, it's my back tooth, the abscess is throbbing",
    ],
)
def test_e_dental_pain_however_severe_is_the_urgent_dentist(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level >= 3, a.reasons
    assert "RF-NEURO-001" not in _rules(a), a.reasons


def test_e_guard_the_worst_headache_of_my_life_is_still_999(rs):
    level, a = _level(rs, "it's the worst headache of my life, it came on in seconds", ADULT)
    assert level == 1, a.reasons


def test_e_guard_a_dental_abscess_affecting_the_swallowing_is_an_emergency(rs):
    level, a = _level(
        rs, "my face is swollen from a bad tooth and now I can't swallow properly, even my spit", ADULT
    )
    assert level is not None and level <= 2, a.reasons


def test_e_a_dental_abscess_with_a_swollen_cheek_and_a_temperature_is_same_day(rs):
    level, a = _level(
        rs,
        "my tooth's been giving me gyp all week and now my whole jaw is swollen up and I've a temperature, "
        "breathing and swallowing are fine",
        ADULT,
    )
    assert level == 3, a.reasons


# ---------------------------------------------------------------- f. not seeing a thing is not losing sight
@pytest.mark.parametrize(
    "text",
    [
        "she's pushed a pea up her nose and I can't see it anymore, she's breathing fine",
        "he put a little stone in his ear and now I can't see it, he's not in pain",
    ],
)
def test_f_a_child_with_something_up_the_nose_or_in_the_ear_is_not_a_stroke(rs, text):
    level, a = _level(rs, text, SCHOOL)
    assert level is not None and level >= 3, a.reasons


def test_f_guard_cant_see_out_of_an_eye_is_still_sight_loss(rs):
    level, a = _level(rs, "all of a sudden I can't see out of my right eye", ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- g. chest infection with new breathlessness
def test_g_a_chesty_cough_with_fever_and_new_breathlessness_is_same_day(rs):
    level, a = _level(
        rs,
        "I've had a cough for a week bringing up yellow phlegm, a temperature, and I'm a bit breathless "
        "walking to the shop which isn't like me",
        ADULT,
    )
    assert level == 3, a.reasons


def test_g_guard_a_cough_and_cold_without_breathlessness_stays_self_care(rs):
    level, a = _level(rs, "I've got a cough and a runny nose for three days, otherwise fine", ADULT)
    assert level == 5, a.reasons


# ---------------------------------------------------------------- h. self-care look-alikes
def test_h_sunburn_without_blisters_is_self_care(rs):
    level, a = _level(
        rs,
        "I dozed off by the pool and my legs are bright red and sore, no blisters, what can I put on them",
        ADULT,
    )
    assert level == 5, a.reasons


def test_h_guard_sunburn_with_blisters_and_feeling_sick_is_not_self_care(rs):
    level, a = _level(rs, "I've got sunburn with blisters all over my back and I feel sick and dizzy", ADULT)
    assert level is not None and level <= 3, a.reasons


def test_h_an_arm_that_went_dead_from_sleeping_on_it_and_came_back_is_self_care(rs):
    level, a = _level(
        rs,
        "I slept with my arm under my pillow and woke up with it numb and tingly, it's totally normal again now",
        ADULT,
    )
    assert level == 5, a.reasons


def test_h_guard_a_dead_arm_with_a_drooping_face_is_a_stroke(rs):
    level, a = _level(rs, "I woke up with my arm dead and my face is drooping on one side", ADULT)
    assert level == 1, a.reasons


def test_h_a_newborn_girls_pink_spot_in_the_nappy_is_normal(rs):
    level, a = _level(
        rs,
        "my daughter's a week old and there's a tiny bit of pink blood from her front in the nappy, she's feeding fine",
        NEWBORN,
    )
    assert level == 5, a.reasons


def test_h_guard_blood_in_a_newborns_poo_is_not_this(rs):
    level, a = _level(rs, "my two week old has blood in his poo and he's not feeding well", NEWBORN)
    assert level is not None and level <= 3, a.reasons


def test_h_a_blanching_rash_in_a_lively_child_after_a_fever_is_a_gp_matter(rs):
    level, a = _level(
        rs,
        "my son's four, he had a temperature and now there's a blotchy rash, the glass test fades, he's "
        "running around playing happily",
        SCHOOL,
    )
    assert level == 4, a.reasons


def test_h_guard_a_rash_that_does_not_fade_is_999(rs):
    level, a = _level(rs, "he has a temperature and a rash that doesn't fade under the glass", SCHOOL)
    assert level == 1, a.reasons


def test_h_a_small_infection_with_pus_that_is_not_spreading_is_a_gp_matter(rs):
    level, a = _level(
        rs, "the side of my fingernail is red with a bit of pus, it's not spreading and I feel fine", ADULT
    )
    assert level == 4, a.reasons


def test_h_guard_pus_with_spreading_redness_and_fever_is_same_day_or_sooner(rs):
    level, a = _level(rs, "my cut has pus and the redness is spreading up my arm and I've got a fever", ADULT)
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- i. injuries and diabetes
def test_i_a_wrist_proper_swollen_after_a_fall_is_same_day(rs):
    level, a = _level(rs, "I fell off my bike onto my hand and my wrist is proper swollen now", ADULT)
    assert level == 3, a.reasons


def test_i_a_high_sugar_with_thirst_and_weeing_but_no_danger_sign_is_same_day(rs):
    level, a = _level(
        rs,
        "I'm type 2 and my sugars have been high for days, always thirsty and weeing loads, not being sick",
        ADULT,
    )
    assert level == 3, a.reasons


def test_i_guard_a_diabetic_with_a_urine_infection_is_still_raised(rs):
    level, a = _level(rs, "I'm diabetic and it burns when I pee and I've got a fever", ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- j. heavy bleeding after birth in plain words
@pytest.mark.parametrize(
    "text",
    [
        "I had my baby last week and I'm soaking through three of the maternity pads in an hour",
        "gave birth five days ago and I'm passing clots the size of a golf ball",
    ],
)
def test_j_heavy_bleeding_after_birth_is_a_999_call(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 1, a.reasons
