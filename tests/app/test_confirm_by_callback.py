"""A contact confirming an alert after it reached them: calling the hotline back, or following
what the voicemail, the text and the e-mail say. Caller ID is not identity: the number a call
comes from reads nothing out and confirms nothing without the report number."""

from __future__ import annotations

import re

from sqlalchemy import select

from hotline.core.confirming import VOICE_MENU_KEY
from hotline.models import LegKind, LegState, NotificationChannel, Tip, TipEvent
from hotline.services import hotline
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.ivr_driver import Call, VoiceDriver

PRINCIPAL = "+13125550111"  # Angela Brooks, Lakeview High School (1101)
MIDDLE_PRINCIPAL = "+13125550121"  # Priya Natarajan, Lakeview Middle School (1102)
HOTLINE = "+13125550100"


def report_of(world: World, tip_id: int) -> str:
    with world.services.db.sessionmaker() as s:
        return s.get_one(Tip, tip_id).report_number


def alerted(world: World, school_code: str = "1101") -> tuple[int, str]:
    tip_id = world.tip(school_code)
    world.run()
    return tip_id, report_of(world, tip_id)


def call_from(world: World, number: str, **extra: str) -> Call:
    driver = VoiceDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    return driver.call(from_=number, to=HOTLINE, extra_params=extra)


def spoken(report: str) -> str:
    return ", ".join(report)


def key_in(call: Call, report: str) -> str:
    """From the start of the call: English, the confirm option, the report number."""
    call.press("1")
    call.press(VOICE_MENU_KEY)
    call.press(report + "#")
    return call.heard_text_since_last_action()


def everything_heard(call: Call) -> str:
    return " ".join(call.heard_texts())


def test_a_contacts_number_hears_nothing_about_any_tip(world: World) -> None:
    _, report = alerted(world)
    _, other = alerted(world)
    call = call_from(world, PRINCIPAL)
    greeting = call.heard_text_since_last_action()
    assert "Thank you for calling the school safety tip line" in greeting
    call.press("1")
    menu = call.heard_text_since_last_action()
    assert f"confirming an alert, press {VOICE_MENU_KEY}" in menu
    call.press(VOICE_MENU_KEY)
    assert "enter the report number" in call.heard_text_since_last_action()
    call.silence()
    call.silence()
    call.silence()  # back to the menu, as for anyone
    assert "To make a new report, press 1" in call.heard_text_since_last_action()
    heard = everything_heard(call)
    for number in (report, other):
        assert spoken(number) not in heard
        assert number not in heard
    assert "Lakeview" not in heard
    assert "critical" not in heard.casefold()
    assert "waiting" not in heard


def test_keying_in_the_report_number_confirms_that_tips_leg_only(world: World) -> None:
    tip_id, report = alerted(world)
    other_id, other = alerted(world)  # another alert to the same principal
    principal = world.contact("Angela Brooks")
    call = call_from(world, PRINCIPAL, StirVerstat="TN-Validation-Passed-A")

    heard = key_in(call, report)

    assert f"Your confirmation of report {spoken(report)} is recorded" in heard
    assert "To confirm another report, press 1" in heard
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].state is LegState.CONFIRMED
    assert legs[LegKind.POC].confirmed_via == "voice-callback"
    assert legs[LegKind.POC].confirmed_by_contact_id == principal.id
    assert legs[LegKind.PSAP].state is LegState.OPEN  # the principal's own leg only
    assert {leg.state for leg in world.legs(other_id).values()} == {LegState.OPEN}
    whole = everything_heard(call)
    assert spoken(other) not in whole
    assert "Lakeview" not in whole

    call.press("1")  # another one
    call.press(other + "#")
    assert world.legs(other_id)[LegKind.POC].state is LegState.CONFIRMED
    call.silence()
    call.silence()
    call.silence()
    assert call.ended
    assert call.last_heard_text() == "Thank you. Goodbye."


def test_the_confirmation_keeps_the_caller_id_verification_for_the_agents(world: World) -> None:
    tip_id, report = alerted(world)
    key_in(call_from(world, PRINCIPAL, StirVerstat="TN-Validation-Failed-C"), report)
    with world.services.db.sessionmaker() as s:
        noted = list(
            s.scalars(
                select(TipEvent.data).where(
                    TipEvent.tip_id == tip_id, TipEvent.kind == "call.caller_verification"
                )
            )
        )
    assert noted == [{"stir_verstat": "TN-Validation-Failed-C", "reached_by": "confirmation"}]
    assert world.events(tip_id).index("leg.confirmed") < world.events(tip_id).index(
        "call.caller_verification"
    )


def test_the_right_report_from_another_number_sounds_like_an_unknown_one(world: World) -> None:
    tip_id, report = alerted(world)
    events_before = world.events(tip_id)
    unknown = "9" * len(report)
    assert report_is_free(world, unknown)

    not_theirs = key_in(call_from(world, MIDDLE_PRINCIPAL), report)
    no_such = key_in(call_from(world, MIDDLE_PRINCIPAL), unknown)

    assert "cannot be confirmed from this phone" in not_theirs
    assert not_theirs == no_such
    assert spoken(report) not in not_theirs
    assert {leg.state for leg in world.legs(tip_id).values()} == {LegState.OPEN}
    assert world.events(tip_id) == events_before
    assert "Lakeview High" not in not_theirs


def test_after_a_few_refusals_the_caller_is_back_at_the_menu(world: World) -> None:
    _, report = alerted(world)
    call = call_from(world, "+14155550123")  # a reporter, or someone spoofing nobody
    key_in(call, report)
    call.press(report + "#")
    call.press(report + "#")
    heard = call.heard_text_since_last_action()
    assert "You can also confirm by texting 1 and the report number" in heard
    assert "To make a new report, press 1" in heard
    call.press("1")  # the ordinary menu still works
    assert "What is your report about?" in call.heard_text_since_last_action()


def test_a_spanish_caller_is_asked_in_spanish(world: World) -> None:
    tip_id, report = alerted(world)
    call = call_from(world, PRINCIPAL)
    call.press("2")
    assert f"confirmar una alerta, oprima {VOICE_MENU_KEY}" in call.heard_text_since_last_action()
    call.press(VOICE_MENU_KEY)
    call.press(report + "#")
    assert "Quedó registrada su confirmación" in call.heard_text_since_last_action()
    assert world.legs(tip_id)[LegKind.POC].state is LegState.CONFIRMED


def report_is_free(world: World, number: str) -> bool:
    with world.services.db.sessionmaker() as s:
        return s.scalar(select(Tip.id).where(Tip.report_number == number)) is None


# What each alert says about confirming later, followed to the letter ---------------------------


def test_the_voicemail_says_how_to_confirm_by_calling_back(world: World) -> None:
    from dispatcher.alert_routes import voicemail_text

    tip_id, report = alerted(world)
    row = world.rows(tip_id, channel=NotificationChannel.VOICE, position=0)[0]
    with world.app.app_context(), world.services.db.sessionmaker() as s:
        text = voicemail_text(s, [s.merge(row)])
    assert "not a confirmation" in text
    assert spoken(report) in text
    assert (
        f"call this number, 1 3 1 2 5 5 5 0 1 0 0, choose your language, press {VOICE_MENU_KEY}, "
        "and key in the report number" in text
    )
    assert "text 1 and the report number" in text
    assert "portal" in text
    # Doing what it says (English is 1) confirms.
    call_from(world, PRINCIPAL).press("1").press(VOICE_MENU_KEY).press(report + "#")
    assert world.legs(tip_id)[LegKind.POC].state is LegState.CONFIRMED


def test_the_alert_text_says_what_to_reply_and_replying_it_confirms(world: World) -> None:
    from tests.support.texting import reply_of, text

    tip_id, report = alerted(world)
    [body] = [m.body for m in world.phone.messages if m.to == PRINCIPAL]
    match = re.search(r"Reply (1 \d+) to confirm", body)
    assert match is not None
    assert match.group(1) == f"1 {report}"
    reply = reply_of(text(world.app, PRINCIPAL, match.group(1)))
    assert reply is not None
    assert reply.startswith(f"Confirmed: report {report}.")
    assert world.legs(tip_id)[LegKind.POC].state is LegState.CONFIRMED


def test_the_alert_email_says_every_way_to_confirm(world: World) -> None:
    _, report = alerted(world)
    [mail] = world.mail.sent_to("a.brooks@lakeview.example.org")
    words = " ".join(mail.text.split())
    assert f'text "1 {report}" to +1 312-555-0100' in words
    assert (
        f"call +1 312-555-0100, choose your language, press {VOICE_MENU_KEY} and key in the "
        "report number" in words
    )
    assert "open the tip on the portal" in words
    assert hotline(world.app).settings.hotline_number == HOTLINE
