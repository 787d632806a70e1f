"""Texting the hotline, end to end through the signed webhook: the first text counts (triage, the
school from the words, 911 and 988 first), the bot asks only for what is missing, an answer
re-plans the tip, and the conversation stays open until an agent closes the tip."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from hotline.directory import export_directory, import_directory, sample_directory
from hotline.models import (
    Alert,
    AlertKind,
    IntakeStep,
    LegKind,
    LegState,
    NotificationChannel,
    SmsIntake,
    Tip,
    TipLevel,
    TipStatus,
)
from sms import commands, service
from tests.app.test_duty_line import DUTY_LINES, add_duty
from tests.support.dispatch_world import World
from tests.support.texting import (
    PRINCIPAL,
    STRANGER,
    database_text,
    messages_of,
    reply_of,
    session_of,
    sms_tips,
    text,
)

OTHER_STUDENT = "+13125550198"


def say(world: World, body: str, sender: str = STRANGER) -> str:
    answer = reply_of(text(world.app, sender, body))
    assert answer is not None, f"no answer to {body!r}"
    return answer


def intake_of(world: World, tip_id: int) -> SmsIntake:
    with session_of(world.app) as s:
        return s.get_one(SmsIntake, tip_id)


def alerts_of(world: World, kind: AlertKind) -> list[Alert]:
    with session_of(world.app) as s:
        return list(s.scalars(select(Alert).where(Alert.kind == kind)))


def called(world: World) -> list[str]:
    return [c.to for c in world.phone.calls]


def only_tip(world: World) -> Tip:
    """The one SMS tip, with its school loaded."""
    with session_of(world.app) as s:
        tip = s.scalars(select(Tip)).one()
        _ = tip.school
        return tip


# The first text -----------------------------------------------------------------------------------


def test_a_gun_on_the_bus_to_a_named_school_calls_the_principal_at_once(world: World) -> None:
    answer = say(world, "there's a kid with a gun on the bus to Lakeview Middle School")
    tip = only_tip(world)
    assert tip.level is TipLevel.CRITICAL
    assert tip.type == "weapon"
    assert tip.school is not None
    assert tip.school.code == "1102"
    assert answer.startswith("Emergency? Call 911.")
    assert answer.index("988") < answer.index(tip.report_number) < answer.index("PIN")
    assert "Which school" not in answer
    assert intake_of(world, tip.id).step is IntakeStep.DONE
    assert [a.kind for a in alerts_of(world, AlertKind.LEVEL_TO_CONFIRM)] == [
        AlertKind.LEVEL_TO_CONFIRM
    ]

    world.run()
    assert set(world.legs(tip.id)) >= {LegKind.POC, LegKind.PSAP}
    assert "+13125550121" in called(world)  # Lakeview Middle School's principal
    assert "tip.triaged" in world.events(tip.id)


def test_a_critical_text_without_a_school_asks_and_the_answer_replans_it(world: World) -> None:
    add_duty(world)
    answer = say(world, "my friend wants to drive into a tree tonight")
    tip = only_tip(world)
    assert tip.level is TipLevel.CRITICAL
    assert tip.type == "self_harm"
    assert tip.school_id is None
    assert answer.endswith(commands.intake_question("ask_school", "en"))
    world.run()
    assert called(world) == []  # the duty line waits for the answer...

    world.clock.advance(60)
    follow = say(world, "it's Lakeview High School")
    assert "Which school" not in follow
    tip = only_tip(world)
    assert tip.school is not None
    assert tip.school.code == "1101"
    assert tip.school_expected_until is None
    world.run()
    assert "+13125550111" in called(world)  # ...and the school's principal is called instead
    assert not set(called(world)) & set(DUTY_LINES)
    assert world.events(tip.id).count("tip.school_set") == 1
    assert "notifications.replanned" in world.events(tip.id)


def test_a_critical_text_whose_school_never_comes_reaches_the_duty_line_in_3_minutes(
    world: World,
) -> None:
    add_duty(world)
    say(world, "someone said they will shoot up the school tomorrow")
    tip = only_tip(world)
    world.run()
    assert called(world) == []
    world.clock.advance(timedelta(minutes=2, seconds=59))
    world.run()
    assert called(world) == []
    world.clock.advance(1)
    world.run()
    assert called(world) == [DUTY_LINES[0]]
    rows = world.rows(tip.id, channel=NotificationChannel.VOICE)
    assert all(r.due_at - tip.received_at <= timedelta(minutes=3) for r in rows if r.position == 0)


def test_smoking_at_a_named_school_is_standard_and_asks_nothing(world: World) -> None:
    answer = say(world, "people are smoking in the bathroom at Northshore Elementary")
    tip = only_tip(world)
    assert tip.level is TipLevel.STANDARD
    assert tip.school is not None
    assert tip.school.code == "1103"
    assert "Which school" not in answer
    assert alerts_of(world, AlertKind.LEVEL_TO_CONFIRM) == []


def test_a_cold_lunch_complaint_is_standard_and_asks_for_the_school(world: World) -> None:
    answer = say(world, "the lunch was cold again today")
    tip = only_tip(world)
    assert tip.level is TipLevel.STANDARD
    assert answer.endswith(commands.intake_question("ask_school", "en"))
    assert intake_of(world, tip.id).step is IntakeStep.ASK_SCHOOL


def test_a_spanish_gun_report_is_critical_and_answered_in_spanish(world: World) -> None:
    answer = say(world, "un chico tiene una pistola en la escuela Lakeview High")
    tip = only_tip(world)
    assert tip.language == "es"
    assert tip.level is TipLevel.CRITICAL
    assert answer.startswith("¿Emergencia? Llame al 911.")
    assert "recibimos su mensaje" in answer


def test_school_by_code_inside_a_sentence(world: World) -> None:
    say(world, "someone is vaping at 1104 every day")
    tip = only_tip(world)
    assert tip.school is not None
    assert tip.school.code == "1104"


def test_an_ambiguous_school_is_offered_and_picked_by_number(world: World) -> None:
    answer = say(world, "there is a fight after school at lakeview")
    assert "Reply 1 for Lakeview High School, 2 for Lakeview Middle School" in answer
    assert only_tip(world).school_id is None
    picked = say(world, "2")
    assert "Which school" not in picked
    tip = only_tip(world)
    assert tip.school is not None
    assert tip.school.code == "1102"


# What the bot asks next ---------------------------------------------------------------------------


def test_hi_then_the_school_then_what_happened(world: World) -> None:
    first = say(world, "hi")
    assert "Which school" in first
    second = say(world, "Foothills High School")
    assert commands.intake_question("ask_what", "en") in second
    third = say(world, "a boy in my class keeps getting pushed around")
    tip = only_tip(world)
    assert intake_of(world, tip.id).step is IntakeStep.DONE
    assert third.startswith(f"Added to report {tip.report_number}")
    assert messages_of(world.app, tip.id) == [
        "hi",
        "Foothills High School",
        "a boy in my class keeps getting pushed around",
    ]


def test_two_answers_that_do_not_fit_hand_the_tip_to_an_agent(world: World) -> None:
    say(world, "my friend wants to drive into a tree")
    say(world, "idk")
    handed = say(world, "i dont know the name")
    assert commands.intake_question("handed_to_agent", "en") in handed
    tip = only_tip(world)
    assert intake_of(world, tip.id).step is IntakeStep.WITH_AGENT
    assert tip.school_expected_until is None
    [alert] = alerts_of(world, AlertKind.REPORTER_NEEDS_AGENT)
    assert "school is still unknown" in alert.message
    # Every answer is kept as the reporter's words.
    assert messages_of(world.app, tip.id)[1:] == ["idk", "i dont know the name"]


def test_asking_for_a_person_stops_the_questions(world: World) -> None:
    say(world, "hi")
    handed = say(world, "can i talk to a real person")
    assert commands.intake_question("handed_to_agent", "en") in handed
    assert alerts_of(world, AlertKind.REPORTER_NEEDS_AGENT)


def test_help_as_a_first_text_opens_a_tip_flagged_for_an_agent(world: World) -> None:
    answer = say(world, "HELP")
    tip = only_tip(world)
    assert answer.startswith(commands.help_reply())
    assert tip.report_number in answer
    assert messages_of(world.app, tip.id) == ["HELP"]
    assert alerts_of(world, AlertKind.REPORTER_NEEDS_AGENT)


def test_stop_is_recorded_and_kept_on_the_conversation(world: World) -> None:
    say(world, "someone is selling vapes at 1101")
    assert reply_of(text(world.app, STRANGER, "STOP")) is None
    tip = only_tip(world)
    assert messages_of(world.app, tip.id)[-1] == "STOP"
    assert "reporter.sms_opted_out" in world.events(tip.id)


def test_yes_is_never_an_answer(world: World) -> None:
    say(world, "hi")
    assert reply_of(text(world.app, STRANGER, "YES")) is None
    tip = only_tip(world)
    assert intake_of(world, tip.id).misses == 0
    assert tip.school_id is None


# Triage on every message --------------------------------------------------------------------------


def test_critical_words_later_in_a_conversation_raise_the_tip(world: World) -> None:
    say(world, "kids are vaping in the bathroom at Lakeview High School")
    tip = only_tip(world)
    assert tip.level is TipLevel.STANDARD
    world.run()
    say(world, "and one of them said he has a gun in his backpack")
    tip = only_tip(world)
    assert tip.level is TipLevel.CRITICAL
    assert "tip.reclassified" in world.events(tip.id)
    assert alerts_of(world, AlertKind.LEVEL_TO_CONFIRM)
    world.run()
    assert "+13125550111" in called(world)


def test_a_negated_threat_stays_standard_but_is_flagged(world: World) -> None:
    say(world, "it's not a gun, just a toy, at Lakeview High School")
    tip = only_tip(world)
    assert tip.level is TipLevel.STANDARD
    assert alerts_of(world, AlertKind.THREAT_WORDS_NEGATED)


# The conversation ---------------------------------------------------------------------------------


def test_the_conversation_stays_open_until_the_tip_is_closed(world: World) -> None:
    say(world, "someone is selling vapes at 1101")
    world.clock.advance(timedelta(days=2))
    later = say(world, "they are doing it again")
    tip = only_tip(world)
    assert later.startswith(f"Added to report {tip.report_number}")
    with session_of(world.app) as s:
        s.get_one(Tip, tip.id).status = TipStatus.CLOSED
        s.commit()
    fresh = say(world, "new thing: a fight at 1102")
    assert len(sms_tips(world.app)) == 2
    assert "PIN" in fresh


def test_new_starts_a_new_report(world: World) -> None:
    say(world, "someone is selling vapes at 1101")
    answer = say(world, "NEW")
    assert len(sms_tips(world.app)) == 2
    assert "PIN" in answer


def test_tip_with_report_number_and_pin_adds_from_another_phone(world: World) -> None:
    first = say(world, "someone is selling vapes at 1101")
    tip = only_tip(world)
    pin = first.split("PIN ", 1)[1].split(":", 1)[0]
    added = say(world, f"TIP {tip.report_number} {pin} it is in the gym now", OTHER_STUDENT)
    assert added.startswith(f"Added to report {tip.report_number}")
    assert messages_of(world.app, tip.id)[-1] == "it is in the gym now"
    assert len(sms_tips(world.app)) == 1


def test_a_wrong_pin_is_answered_like_an_unknown_report_and_locks(world: World) -> None:
    say(world, "someone is selling vapes at 1101")
    tip = only_tip(world)
    wrong = say(world, f"TIP {tip.report_number} 0000 hello", OTHER_STUDENT)
    unknown = say(world, "TIP 9999999 0000 hello", OTHER_STUDENT)
    assert wrong == unknown
    assert "Nothing was added" in wrong
    for _ in range(4):
        say(world, f"TIP {tip.report_number} 0000 hello", OTHER_STUDENT)
    assert "followup.locked" in world.events(tip.id)
    assert len(sms_tips(world.app)) == 1
    assert messages_of(world.app, tip.id) == ["someone is selling vapes at 1101"]


def test_a_contact_still_confirms_with_1_and_a_report_number(world: World) -> None:
    say(world, "there's a kid with a gun on the bus to Lakeview High School")
    tip = only_tip(world)
    world.run()
    answer = say(world, f"1 {tip.report_number}", PRINCIPAL)
    assert answer.startswith(f"Confirmed: report {tip.report_number}")
    assert world.legs(tip.id)[LegKind.POC].state is LegState.CONFIRMED


# Floods and odd texts -----------------------------------------------------------------------------


def test_a_flood_is_kept_and_triaged_but_no_longer_answered_one_by_one(world: World) -> None:
    say(world, "someone is selling vapes at 1101")
    tip = only_tip(world)
    limit = world.services.settings.sms_flood_per_minute
    answers = [reply_of(text(world.app, STRANGER, f"spam {n}")) for n in range(limit + 3)]
    assert all(a is not None for a in answers[: limit - 1])
    assert answers[limit - 1 :] == [None] * 4
    assert len(messages_of(world.app, tip.id)) == limit + 4  # nothing sent is lost
    [flood] = [a for a in alerts_of(world, AlertKind.REPORTER_NEEDS_AGENT) if "flood" in a.message]
    assert tip.report_number in flood.message
    # Still triaged while flooding: a gun in the flood makes the tip Critical.
    assert reply_of(text(world.app, STRANGER, "he has a gun")) is None
    assert only_tip(world).level is TipLevel.CRITICAL
    # NEW in a flood makes no new tip.
    assert reply_of(text(world.app, STRANGER, "NEW")) is None
    assert len(sms_tips(world.app)) == 1
    # A minute later the number is answered again.
    world.clock.advance(61)
    assert say(world, "sorry").startswith(f"Added to report {tip.report_number}")


def test_long_emoji_non_latin_and_control_character_texts_are_kept(world: World) -> None:
    long = "he keeps texting me threats " * 57  # about 1,600 characters
    bodies = [long.strip(), "🔫🔫 at 1101 😨", "他在学校有刀", "bad\x00 bytes\x07 here"]
    for body in bodies:
        assert say(world, body)
    tip = only_tip(world)
    kept = messages_of(world.app, tip.id)
    assert kept[0] == long.strip()
    assert kept[1] == "🔫🔫 at 1101 😨"
    assert kept[2] == "他在学校有刀"
    assert kept[3] == "bad  bytes  here"


def test_no_reporter_number_in_clear_after_a_whole_intake(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        first = say(world, "hi")
        say(world, "Lakeview High School")
        say(world, "a kid has a knife in his locker")
        tip = only_tip(world)
        pin = first.split("PIN ", 1)[1].split(":", 1)[0]
        say(world, f"TIP {tip.report_number} {pin} he showed it again", OTHER_STUDENT)
        say(world, f"TIP {tip.report_number} 0000 wrong pin", OTHER_STUDENT)
        world.run()
    dump = database_text(world.app)
    alerts = " ".join(a.message for kind in AlertKind for a in alerts_of(world, kind))
    for number in (STRANGER, OTHER_STUDENT):
        for digits in (number, number[2:], number[-7:], f"{number[-7:-4]}-{number[-4:]}"):
            assert digits not in dump
            assert digits not in caplog.text
            assert digits not in alerts


# The worked examples in Spanish ----------------------------------------------------------------


def test_a_spanish_gun_on_the_bus_calls_the_school(world: World) -> None:
    answer = say(world, "hay un chico con una pistola en el autobús a Lakeview Middle School")
    tip = only_tip(world)
    assert (tip.level, tip.type, tip.language) == (TipLevel.CRITICAL, "weapon", "es")
    assert tip.school is not None
    assert tip.school.code == "1102"
    assert answer.startswith("¿Emergencia? Llame al 911.")
    world.run()
    assert "+13125550121" in called(world)


def test_a_spanish_friend_who_wants_to_crash_into_a_tree_is_asked_the_school_in_spanish(
    world: World,
) -> None:
    answer = say(world, "mi amiga quiere estrellar su carro contra un árbol")
    tip = only_tip(world)
    assert (tip.level, tip.type) == (TipLevel.CRITICAL, "self_harm")
    assert answer.endswith(commands.intake_question("ask_school", "es"))
    follow = say(world, "es en Foothills High School")
    assert follow.startswith(f"Agregado al reporte {tip.report_number}")
    tip = only_tip(world)
    assert tip.school is not None
    assert tip.school.code == "2201"


def test_spanish_smoking_and_a_cold_lunch_are_standard(world: World) -> None:
    say(world, "están fumando en el baño de Northshore Elementary")
    tip = only_tip(world)
    assert (tip.level, tip.type) == (TipLevel.STANDARD, "smoking")
    assert tip.school is not None
    assert tip.school.code == "1103"
    second = say(world, "la comida de la cafetería estaba fría", OTHER_STUDENT)
    assert "¿De qué escuela se trata?" in second
    assert len(sms_tips(world.app)) == 2


@pytest.mark.parametrize("body", ["TIP 1234567 4321 he is back", "NEW"])
def test_a_command_text_is_kept_even_when_handling_it_fails(
    world: World, monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    def broken(*_args: object, **_kwargs: object) -> service.Reply:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "handle_text", broken)
    answer = say(world, body)
    assert messages_of(world.app, only_tip(world).id) == [body]
    assert "911" in answer


def with_aliases(directory: bytes, aliases: dict[str, str]) -> bytes:
    """The directory file with a ``school_aliases`` column: ``aliases`` by school code."""
    lines = directory.decode().splitlines()
    header = lines[0].split(",")
    code_at = header.index("school_code")
    out = [lines[0] + ",school_aliases"]
    for line in lines[1:]:
        code = line.split(",")[code_at] if line else ""
        out.append(f"{line},{aliases.get(code, '')}")
    return ("\n".join(out) + "\n").encode()


def test_a_school_is_found_by_the_nickname_the_directory_gives_it(world: World) -> None:
    directory = with_aliases(sample_directory(), {"1101": "LHS; the Lake"})
    assert import_directory(world.services.db, world.clock, directory).ok
    say(world, "a kid has a gun at LHS")
    tip = only_tip(world)
    assert tip.school is not None
    assert tip.school.code == "1101"
    with session_of(world.app) as s:
        exported = export_directory(s)
    assert "LHS; the Lake" in exported
