"""The text bot's guided intake, without a database: what a text says to the bot (school by code
or name inside a sentence, a pick, asking for a person, saying what happens) and which question
comes next."""

from __future__ import annotations

import pytest

from hotline.models import IntakeStep
from ivr_flows.school_match import SchoolIndex, SchoolName
from sms.intake import (
    IntakeState,
    Question,
    Reading,
    SchoolGuess,
    first_turn,
    next_turn,
    read_text,
)

#: "LAKEVIEW HIGH" in full-width letters, as some phone keyboards send it.
FULL_WIDTH_LAKEVIEW_HIGH = "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in "LAKEVIEW HIGH")

SCHOOLS = SchoolIndex(
    [
        SchoolName(1, "Lakeview High School", "1101"),
        SchoolName(2, "Lakeview Middle School", "1102"),
        SchoolName(3, "Northshore Elementary School", "1103"),
        SchoolName(4, "Bravo Middle School", "3301"),
        SchoolName(5, "Alpha Middle School", "3302"),
    ]
)


def read(text: str, language: str = "en", *, critical: bool = False) -> Reading:
    return read_text(text, schools=SCHOOLS, language=language, critical_words=critical)


# Reading ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "school_ids", "sure", "how"),
    [
        ("there's a kid with a gun on the bus to Bravo Middle School", (4,), True, "name"),
        ("kids are smoking in the bathroom at alpha middle", (5,), True, "name"),
        ("someone has a knife at 1103", (3,), True, "code"),
        ("1101", (1,), True, "code"),
        (
            "\uff2c\uff21\uff2b\uff25\uff36\uff29\uff25\uff37 \uff28\uff29\uff27\uff28",
            (1,),
            True,
            "name",
        ),  # full-width
        ("it's at northshore", (3,), True, "name"),
        ("lakeview high school", (1,), True, "name"),
        ("lakview hi", (1,), True, "name"),
        ("lakeview", (1, 2), False, "name"),
        ("1101 or maybe 1102", (1, 2), False, "code"),
    ],
)
def test_the_school_is_read_from_a_code_or_a_name_inside_a_sentence(
    text: str, school_ids: tuple[int, ...], sure: bool, how: str
) -> None:
    assert read(text).school == SchoolGuess(school_ids, sure=sure, how=how)


@pytest.mark.parametrize(
    "text", ["the lunch was cold again", "hi", "help", "my friend wants to drive into a tree"]
)
def test_a_text_without_a_school_names_none(text: str) -> None:
    assert read(text).school is None


def test_a_report_number_is_not_a_school_code() -> None:
    assert read("about 1234567").school is None


@pytest.mark.parametrize(("text", "choice"), [("1", 1), (" 2 ", 2), ("#3", 3), ("1.", 1)])
def test_a_bare_digit_is_a_pick(text: str, choice: int) -> None:
    reading = read(text)
    assert reading.choice == choice
    assert reading.school is None


@pytest.mark.parametrize(
    "text",
    ["can I talk to someone", "I want a real person", "AGENT", "quiero hablar con alguien"],
)
def test_asking_for_a_person_is_read_in_english_and_spanish(text: str) -> None:
    assert read(text).wants_person


@pytest.mark.parametrize(
    ("text", "tells"),
    [
        ("hi", False),
        ("help", False),
        ("hola, ayuda por favor", False),
        ("Lakeview High School", False),
        ("1101", False),
        ("kids are vaping in the bathroom", True),
        ("the lunch was cold again", True),
        ("hay una pelea en el patio", True),
    ],
)
def test_what_happens_is_more_than_a_greeting_or_a_school(text: str, tells: bool) -> None:
    assert read(text).tells_what is tells


def test_threat_words_alone_tell_what_happens() -> None:
    assert read("gun", critical=True).tells_what
    assert not read("gun").tells_what


# The questions ------------------------------------------------------------------------------------


def test_a_first_text_with_a_sure_school_and_a_story_asks_nothing() -> None:
    turn = first_turn(read("there's a kid with a gun on the bus to Bravo Middle School"))
    assert (turn.state.step, turn.set_school, turn.ask) == (IntakeStep.DONE, 4, None)


def test_a_first_text_without_a_school_asks_for_it() -> None:
    turn = first_turn(read("my friend wants to drive into a tree"))
    assert (turn.state.step, turn.set_school, turn.ask) == (
        IntakeStep.ASK_SCHOOL,
        None,
        Question.SCHOOL,
    )


def test_a_misspelt_school_is_offered_but_not_set() -> None:
    assert read("smoking at nortshor").school == SchoolGuess(
        (3,), sure=False, how="name", likely=False
    )
    turn = first_turn(read("smoking at nortshor"))
    assert turn.set_school is None
    assert turn.state == IntakeState(IntakeStep.CONFIRM_SCHOOL, offered=(3,))
    assert next_turn(turn.state, read("1"), told_what=True).set_school == 3


def test_a_likely_but_unsure_school_is_set_at_once_and_confirmed_back() -> None:
    unsure = SchoolGuess((3,), sure=False, how="name")
    turn = first_turn(Reading(school=unsure, choice=None, wants_person=False, tells_what=True))
    assert turn.set_school == 3
    assert turn.ask == Question.CONFIRM_SCHOOL
    assert turn.state == IntakeState(IntakeStep.CONFIRM_SCHOOL, offered=(3,))
    confirmed = next_turn(turn.state, read("1"), told_what=True)
    assert (confirmed.state.step, confirmed.set_school, confirmed.set_school_how) == (
        IntakeStep.DONE,
        3,
        "choice",
    )


def test_several_schools_are_offered_and_none_is_set_until_one_is_picked() -> None:
    turn = first_turn(read("fight at lakeview"))
    assert turn.set_school is None
    assert turn.state.offered == (1, 2)
    picked = next_turn(turn.state, read("2"), told_what=True)
    assert picked.set_school == 2
    assert picked.state.step is IntakeStep.DONE


def test_a_pick_out_of_range_is_a_miss() -> None:
    state = IntakeState(IntakeStep.CONFIRM_SCHOOL, offered=(1, 2))
    turn = next_turn(state, read("7"), told_what=True)
    assert turn.set_school is None
    assert turn.state.misses == 1
    assert turn.ask == Question.CONFIRM_SCHOOL


def test_a_name_sent_again_replaces_the_offer() -> None:
    state = IntakeState(IntakeStep.CONFIRM_SCHOOL, offered=(3,))
    turn = next_turn(state, read("no it's Bravo Middle School"), told_what=True)
    assert turn.set_school == 4
    assert turn.state.step is IntakeStep.DONE


def test_a_school_after_hi_then_asks_what_happens() -> None:
    turn = first_turn(read("hi"))
    assert turn.ask == Question.SCHOOL
    school = next_turn(turn.state, read("1101"), told_what=False)
    assert (school.set_school, school.ask) == (1, Question.WHAT)
    story = next_turn(school.state, read("someone is selling vapes"), told_what=True)
    assert story.state.step is IntakeStep.DONE
    assert story.ask is None


def test_two_answers_that_do_not_fit_hand_the_tip_to_an_agent() -> None:
    turn = first_turn(read("my friend wants to drive into a tree"))
    once = next_turn(turn.state, read("idk"), told_what=True)
    assert (once.state.misses, once.ask) == (1, Question.SCHOOL)
    twice = next_turn(once.state, read("i dont know which one"), told_what=True)
    assert twice.state.step is IntakeStep.WITH_AGENT
    assert twice.handed_to_agent
    assert next_turn(twice.state, read("Bravo Middle School"), told_what=True).ask is None


def test_asking_for_a_person_stops_the_questions_at_once() -> None:
    turn = first_turn(read("hi"))
    person = next_turn(turn.state, read("can i talk to a real person"), told_what=False)
    assert person.state.step is IntakeStep.WITH_AGENT
    assert person.handed_to_agent
    assert first_turn(read("I need to talk to someone")).handed_to_agent


def test_a_finished_intake_asks_nothing_more() -> None:
    done = IntakeState(IntakeStep.DONE)
    assert next_turn(done, read("also he has a knife"), told_what=True).ask is None
    assert next_turn(done, read("Alpha Middle School"), told_what=True).set_school is None


def test_a_schools_alias_said_exactly_is_as_sure_as_a_code() -> None:
    schools = SchoolIndex(
        [
            SchoolName(1, "Lakeview High School", "1101", ("LHS", "the Lake")),
            SchoolName(2, "Lakeview Middle School", "1102", ("LMS",)),
        ]
    )
    reading = read_text("a kid has a gun at LHS", schools=schools, language="en")
    assert reading.school == SchoolGuess((1,), sure=True, how="alias")
    both = read_text("either LMS or the lake", schools=schools, language="en")
    assert both.school == SchoolGuess((2, 1), sure=False, how="alias")
    inside = read_text("the helhs are alive", schools=schools, language="en").school
    assert inside is None or inside.how != "alias"  # an alias is a word of its own
