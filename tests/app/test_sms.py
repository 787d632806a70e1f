"""Incoming texts: keywords, confirmations by contacts, and tips that are never dropped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from hotline.core.clock import ManualClock
from hotline.models import (
    Contact,
    ContactRole,
    LegKind,
    LegState,
    MediaState,
    MessageMedia,
    NotificationChannel,
    NotificationState,
    Reporter,
    Tip,
    TipEvent,
    TipLevel,
    TipStatus,
    WebhookReceipt,
)
from hotline.services import hotline
from hotline.telephony.ports import FetchedMedia
from hotline.telephony.simulated import SimulatedPhoneNetwork
from sms import commands, service
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.sim_support import FlaskClientTransport
from tests.support.texting import (
    PRINCIPAL,
    PSAP_LINE,
    STRANGER,
    STRANGER_DIGITS,
    alerted,
    count,
    database_text,
    driver,
    messages_of,
    phone_row,
    reply_of,
    report_number,
    report_number_is_free,
    session_of,
    sms,
    sms_tips,
    text,
    world_events,
)
from tests.support.twilio_driver import sign

# The pure part ----------------------------------------------------------------------------------


# Through the webhook -----------------------------------------------------------------------------


def test_1_alone_from_a_contact_confirms_nothing_and_says_how(world: World) -> None:
    """Anyone can text from the principal's number: "1" alone must not silence the alert."""
    older, older_report = alerted(world)
    world.clock.advance(60)
    newer, newer_report = alerted(world)
    events_before = world.events(newer)

    reply = reply_of(text(world.app, PRINCIPAL, "1"))

    assert reply == commands.report_number_needed_reply(service.EXAMPLE_REPORT)
    assert "reply 1 followed by the report number, e.g. 1 1234567" in reply
    assert older_report not in reply
    assert newer_report not in reply
    assert "Lakeview" not in reply
    for tip_id in (older, newer):
        assert {leg.state for leg in world.legs(tip_id).values()} == {LegState.OPEN}
    assert world.events(newer) == events_before
    assert sms_tips(world.app) == []  # a confirmation attempt, not a tip


def test_1_and_the_report_number_confirms_the_principals_leg(world: World) -> None:
    tip_id, report = alerted(world)
    principal = world.contact("Angela Brooks")
    sent_to_principal = [
        r for r in world.rows(tip_id) if r.contact_id == principal.id and r.phone_number_id
    ]
    assert {r.channel for r in sent_to_principal} == {
        NotificationChannel.VOICE,
        NotificationChannel.SMS,
    }

    reply = reply_of(text(world.app, PRINCIPAL, f"1 {report}"))

    assert reply == f"Confirmed: report {report}. Thank you. Text HELP for help."
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].state is LegState.CONFIRMED
    assert legs[LegKind.POC].confirmed_via == "sms"
    assert legs[LegKind.POC].confirmed_by_contact_id == principal.id
    assert legs[LegKind.PSAP].state is LegState.OPEN  # a confirmation ends its own leg only
    assert "leg.confirmed" in world.events(tip_id)
    assert sms_tips(world.app) == []  # a command, not a tip

    again = reply_of(text(world.app, PRINCIPAL, f"1 {report}"))
    assert again is not None
    assert f"report {report} was already confirmed" in again
    assert world.events(tip_id).count("leg.confirmed") == 1
    assert "receipt.confirmed" in world.events(tip_id)


@pytest.mark.parametrize("form", ["1 {r}", "1, {r}", " 1 #{r} ", "1#{r}"])
def test_1_with_the_report_number_confirms_that_report(world: World, form: str) -> None:
    tip_id, report = alerted(world)
    world.clock.advance(30)
    alerted(world)  # a newer alert: the report number says which one

    reply = reply_of(text(world.app, PRINCIPAL, form.format(r=report)))

    assert reply is not None
    assert reply.startswith(f"Confirmed: report {report}. Thank you.")
    assert world.legs(tip_id)[LegKind.POC].state is LegState.CONFIRMED


def test_a_report_not_sent_to_them_is_refused_without_saying_whether_it_exists(
    world: World,
) -> None:
    elsewhere, elsewhere_report = alerted(world, school_code="1102")  # the middle school
    alerted(world)  # and one the principal did get
    events_before = world.events(elsewhere)

    refused = reply_of(text(world.app, PRINCIPAL, f"1 {elsewhere_report}"))
    unknown_number = "9" * len(elsewhere_report)
    assert report_number_is_free(world.app, unknown_number)
    unknown = reply_of(text(world.app, PRINCIPAL, f"1 {unknown_number}"))

    assert refused is not None
    assert unknown is not None
    assert f"Report {elsewhere_report} is not one sent to this number" in refused
    assert "HELP" in refused
    assert refused.replace(elsewhere_report, "N") == unknown.replace(unknown_number, "N")
    assert world.legs(elsewhere)[LegKind.POC].state is LegState.OPEN
    assert world.events(elsewhere) == events_before
    assert sms_tips(world.app) == []


def test_a_shared_line_confirms_for_the_contact_notified_on_it(world: World) -> None:
    """Another contact (another district's police desk) uses the same line as the PSAP:
    "1 <report>" confirms the PSAP leg for the PSAP contact that was actually called."""
    psap = world.contact("Lakeview County Emergency")
    with world.services.db.session() as s:
        foothills = s.get_one(Contact, world.contact("Foothills County Sheriff").id)
        s.add(
            Contact(
                district_id=foothills.district_id,
                school_id=None,
                role=ContactRole.LAW_ENFORCEMENT,
                priority=2,
                name="Night desk (shared line)",
                phone_number_id=psap.phone_number_id,
                created_at=world.clock.now(),
                updated_at=world.clock.now(),
            )
        )
    tip_id, report = alerted(world)
    for _ in range(10):  # calls are spaced (one per second): let the PSAP's go out
        if all(r.state is NotificationState.SENT for r in world.rows(tip_id, contact_id=psap.id)):
            break
        world.clock.advance(2)
        world.run()

    reply = reply_of(text(world.app, PSAP_LINE, f"1 {report}"))

    assert reply is not None
    assert f"Confirmed: report {report}" in reply
    legs = world.legs(tip_id)
    assert legs[LegKind.PSAP].state is LegState.CONFIRMED
    assert legs[LegKind.PSAP].confirmed_by_contact_id == psap.id
    assert legs[LegKind.POC].state is LegState.OPEN


def test_1_alone_with_no_alert_gets_the_same_answer(world: World) -> None:
    """Whether anything waits for the number is not said either."""
    reply = reply_of(text(world.app, PRINCIPAL, "1"))
    assert reply == commands.report_number_needed_reply(service.EXAMPLE_REPORT)
    assert sms_tips(world.app) == []


def test_a_text_from_an_unknown_number_becomes_an_sms_tip(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    words = "A boy in my class said he will bring a gun to Lakeview High tomorrow"
    with caplog.at_level(logging.DEBUG):
        reply = reply_of(text(world.app, STRANGER, words))

    [tip] = sms_tips(world.app)
    # "gun" and "tomorrow": Critical from the words alone.
    assert (tip.level, tip.status, tip.language) == (TipLevel.CRITICAL, TipStatus.OPEN, "en")
    assert messages_of(world.app, tip.id) == [words]
    assert reply is not None
    assert f"Report {tip.report_number}, PIN " in reply
    pin = reply.split("PIN ", 1)[1].split(":", 1)[0]
    assert world.services.keyring.check_pin(tip.report_number, pin, tip.pin_hash, tip.pin_key_id)
    assert "agent will read it" in reply
    assert "911" in reply
    assert "988" in reply
    with session_of(world.app) as s:
        reporter = s.get_one(Reporter, tip.reporter_id)
        assert len(reporter.number_hash) == 64
        assert reporter.number_encrypted
        assert STRANGER not in reporter.number_encrypted
    # The number is nowhere in clear: not in any table (receipts included), not in the logs.
    dump = database_text(world.app)
    assert words in dump
    for digits in STRANGER_DIGITS:
        assert digits not in dump
        assert digits not in caplog.text
    assert "CHICAGO" not in dump
    assert "60601" not in dump
    events = world.events(tip.id)
    assert events[:2] == ["tip.received", "message.from_reporter"]


def test_a_second_text_joins_the_conversation_and_a_day_later_too(world: World) -> None:
    reply_of(text(world.app, STRANGER, "someone is selling vapes in the bathroom at 1101"))
    world.clock.advance(timedelta(hours=3))
    second = reply_of(text(world.app, STRANGER, "it is the 2nd floor one"))

    [tip] = sms_tips(world.app)
    assert messages_of(world.app, tip.id) == [
        "someone is selling vapes in the bathroom at 1101",
        "it is the 2nd floor one",
    ]
    assert second is not None
    assert second.startswith(f"Added to report {tip.report_number}.")
    assert "PIN" not in second
    assert "911" in second
    assert "988" in second

    # The conversation is open until an agent closes the tip, however long it is quiet.
    world.clock.advance(timedelta(hours=25))
    later = reply_of(text(world.app, STRANGER, "something else happened today"))
    assert len(sms_tips(world.app)) == 1
    assert later is not None
    assert later.startswith(f"Added to report {tip.report_number}.")
    assert count(world.app, Reporter) == 1


def test_a_spanish_text_is_answered_in_spanish(world: World) -> None:
    reply = reply_of(text(world.app, STRANGER, "Hola, hay un chico con una pistola en la escuela"))
    [tip] = sms_tips(world.app)
    assert tip.language == "es"
    assert reply is not None
    assert "recibimos su mensaje" in reply
    assert "911" in reply
    assert "988" in reply
    asked = reply_of(text(world.app, STRANGER, "ok"))
    assert asked is not None
    assert asked.startswith("¿De qué escuela se trata?")
    added = reply_of(text(world.app, STRANGER, "es en Lakeview High School"))
    assert added is not None
    assert added.startswith(f"Agregado al reporte {tip.report_number}")


def test_pictures_are_kept_on_the_timeline(world: World) -> None:
    """A text's pictures are on its tip's timeline as the hotline's own media rows (never the
    provider's URLs, which go when the provider's copies do), fetched and kept by a job, and
    deleted at the provider; a picture alone, later, joins the conversation."""
    urls = [
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME2",
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM2/Media/ME3",
    ]
    world.phone.media.update(
        {
            urls[0]: FetchedMedia(b"\xff\xd8 one", "image/jpeg"),
            urls[1]: FetchedMedia(b"\x89PNG two", "image/png"),
            urls[2]: FetchedMedia(b"\xff\xd8 three", "image/jpeg"),
        }
    )
    media = {
        "NumMedia": "2",
        "MediaUrl0": urls[0],
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": urls[1],
        "MediaContentType1": "image/png",
    }
    later = {"NumMedia": "1", "MediaUrl0": urls[2], "MediaContentType0": "image/jpeg"}
    reply_of(text(world.app, STRANGER, "look at this", **media))
    reply = reply_of(text(world.app, STRANGER, "", **later))  # a picture alone, later

    [tip] = sms_tips(world.app)
    assert messages_of(world.app, tip.id) == ["look at this"]
    with session_of(world.app) as s:
        kept = list(
            s.scalars(
                select(TipEvent.data)
                .where(TipEvent.tip_id == tip.id, TipEvent.kind == "message.media")
                .order_by(TipEvent.id)
            )
        )
        items = list(s.scalars(select(MessageMedia).order_by(MessageMedia.id)))
    assert len(kept) == 2
    assert [m["id"] for m in kept[0]["media"]] + [m["id"] for m in kept[1]["media"]] == [
        i.id for i in items
    ]
    assert [m["content_type"] for m in kept[0]["media"]] == ["image/jpeg", "image/png"]
    assert "twilio.com" not in str(kept)
    assert reply is not None
    assert reply.startswith(f"Added to report {tip.report_number}")

    world.run()  # the jobs the webhooks handed over
    assert world.phone.deleted_media == urls
    with session_of(world.app) as s:
        items = list(s.scalars(select(MessageMedia).order_by(MessageMedia.id)))
    assert [(i.state, i.provider_url) for i in items] == [(MediaState.FETCHED, None)] * 3
    events = world.events(tip.id)
    assert events.count("message.media_fetched") == 3
    assert events.count("message.media_deleted_at_provider") == 3


def test_1_from_an_unknown_number_is_kept_not_dropped(world: World) -> None:
    reply = reply_of(text(world.app, STRANGER, "1"))
    [tip] = sms_tips(world.app)
    assert messages_of(world.app, tip.id) == ["1"]
    assert reply is not None
    assert tip.report_number in reply


def test_a_contacts_text_that_is_not_a_command_is_kept_with_a_hint(world: World) -> None:
    reply = reply_of(text(world.app, PRINCIPAL, "got it, on my way"))
    [tip] = sms_tips(world.app)
    assert messages_of(world.app, tip.id) == ["got it, on my way"]
    assert reply is not None
    assert "To confirm an alert, text 1 and its report number" in reply


def test_stop_then_1_sends_nothing_and_start_clears_it(world: World) -> None:
    tip_id, report = alerted(world)
    texts_before = len(world.phone.messages)

    assert reply_of(text(world.app, PRINCIPAL, "Stop ")) is None
    phone = phone_row(world.app, PRINCIPAL)
    assert phone.sms_opted_out
    assert phone.sms_opted_out_at == world.clock.now()

    assert reply_of(text(world.app, PRINCIPAL, f"1 {report}")) is None  # nothing sent...
    assert world.legs(tip_id)[LegKind.POC].state is LegState.CONFIRMED  # ...but it counts
    assert reply_of(text(world.app, PRINCIPAL, "HELP")) is None
    assert reply_of(text(world.app, PRINCIPAL, "are you there?")) is None
    assert len(sms_tips(world.app)) == 1  # the words are still kept
    assert len(world.phone.messages) == texts_before

    assert reply_of(text(world.app, PRINCIPAL, "START")) is None  # Twilio confirms it itself
    phone = phone_row(world.app, PRINCIPAL)
    assert not phone.sms_opted_out
    assert phone.sms_opted_out_at is None
    help_reply = reply_of(text(world.app, PRINCIPAL, "help"))
    assert help_reply == commands.help_reply()


def test_a_reporter_who_texted_stop_is_not_answered_until_start(world: World) -> None:
    reply_of(text(world.app, STRANGER, "there is a fight after school today at 1101"))
    [tip] = sms_tips(world.app)

    assert reply_of(text(world.app, STRANGER, "STOP")) is None
    with session_of(world.app) as s:
        assert s.scalars(select(Reporter)).one().sms_opted_out
    assert "reporter.sms_opted_out" in world.events(tip.id)
    assert reply_of(text(world.app, STRANGER, "they are in the gym")) is None
    assert messages_of(world.app, tip.id)[-1] == "they are in the gym"

    assert reply_of(text(world.app, STRANGER, "yes")) is None
    with session_of(world.app) as s:
        assert not s.scalars(select(Reporter)).one().sms_opted_out
    assert "reporter.sms_opted_in" in world.events(tip.id)
    reply = reply_of(text(world.app, STRANGER, "still there"))
    assert reply is not None
    assert reply.startswith(f"Added to report {tip.report_number}")


def test_stop_from_a_new_number_is_remembered_without_the_number(world: World) -> None:
    assert reply_of(text(world.app, STRANGER, "stop")) is None
    assert sms_tips(world.app) == []
    assert reply_of(text(world.app, STRANGER, "someone has a knife")) is None
    assert len(sms_tips(world.app)) == 1
    dump = database_text(world.app)
    assert all(digits not in dump for digits in STRANGER_DIGITS)


def test_help_from_a_contact_gets_the_hotlines_own_answer(world: World) -> None:
    reply = reply_of(text(world.app, PRINCIPAL, "HELP"))
    assert reply == commands.help_reply()
    assert sms_tips(world.app) == []
    assert count(world.app, Reporter) == 0


def test_help_from_a_reporter_gets_the_hotlines_answer_and_opens_a_tip(world: World) -> None:
    reply = reply_of(text(world.app, STRANGER, "HELP"))
    assert reply is not None
    assert reply.startswith(commands.help_reply())
    [tip] = sms_tips(world.app)
    assert f"Report {tip.report_number}, PIN" in reply


def test_a_forged_text_is_refused_and_stores_nothing(world: World) -> None:
    params = sms(STRANGER, "forged words")
    url = TEST_PUBLIC_BASE_URL + "/twilio/sms"
    client = driver(world.app)
    for kwargs in (
        {"signed": False},
        {"signature": sign("not-the-token", url, params)},
        {"signature": sign(TEST_AUTH_TOKEN, url, {**params, "Body": "other words"})},
        {"signature": sign(TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL + "/twilio/voice", params)},
    ):
        r = client.post("/twilio/sms", params, **kwargs)
        assert r.status_code == 403
    assert count(world.app, Tip) == 0
    assert count(world.app, Reporter) == 0
    assert count(world.app, WebhookReceipt) == 0


def test_a_retried_delivery_changes_nothing_twice(world: World) -> None:
    client = driver(world.app)
    params = sms(STRANGER, "a student is threatening others on the bus")
    first = client.post("/twilio/sms", params, idempotency_token="tok-1")
    again = client.post("/twilio/sms", params, idempotency_token="tok-1")
    assert reply_of(first) is not None
    assert again.get_data() == first.get_data()
    # Without the token, the same content (same MessageSid) is recognised too.
    params2 = sms(STRANGER, "and on the way home")
    assert (
        client.post("/twilio/sms", params2).get_data()
        == client.post("/twilio/sms", params2).get_data()
    )
    [tip] = sms_tips(world.app)
    assert messages_of(world.app, tip.id) == [
        "a student is threatening others on the bus",
        "and on the way home",
    ]


def test_a_retried_confirmation_changes_nothing_twice(world: World) -> None:
    tip_id, report = alerted(world)
    client = driver(world.app)
    params = sms(PRINCIPAL, f"1 {report}")
    first = client.post("/twilio/sms", params, idempotency_token="tok-c")
    again = client.post("/twilio/sms", params, idempotency_token="tok-c")
    assert again.get_data() == first.get_data()
    assert "Confirmed:" in (reply_of(again) or "")
    events = world.events(tip_id)
    assert events.count("leg.confirmed") == 1
    assert "receipt.confirmed" not in events


@pytest.mark.parametrize(
    ("change", "kept"),
    [
        ({"From": None}, True),
        ({"Body": None}, False),
        ({"From": None, "Body": None}, False),
        ({"From": "anonymous"}, True),
        ({"From": "+266696687"}, True),  # Twilio's placeholder for a withheld number
        ({"From": "not a number \x00"}, True),
        ({"Body": "he said \x00\x01\x1b[31m he has a gun \u202e"}, True),
        ({"Body": "x" * 20_000}, True),
        ({"Body": "🔫😡 at lunch"}, True),
        ({"NumMedia": "99", "MediaUrl0": "ftp://nope"}, True),
        ({"MessageSid": "<script>", "SmsSid": None}, True),
        ({"OptOutType": "x" * 100}, True),
    ],
)
def test_malformed_texts_never_fail(
    world: World, change: dict[str, str | None], kept: bool
) -> None:
    params = sms(STRANGER, "something is wrong at school")
    for name, value in change.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    reply = reply_of(driver(world.app).post("/twilio/sms", params))
    tips = sms_tips(world.app)
    assert len(tips) == (1 if kept else 0)
    withheld = params.get("From", "") in ("", "anonymous", "+266696687") or "number" in params.get(
        "From", ""
    )
    if kept:
        [body] = messages_of(world.app, tips[0].id)
        assert "\x00" not in body
        assert "\x1b" not in body
        assert (tips[0].reporter_id is None) == withheld
    if withheld:
        assert reply is None  # nobody to answer
    else:
        assert reply is not None
        assert "911" in reply
        assert "988" in reply


def test_a_failure_inside_still_keeps_the_text(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply_of(text(world.app, STRANGER, "first message"))

    def broken(*args: object, **kwargs: object) -> service.Reply:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "handle_text", broken)
    reply = reply_of(text(world.app, STRANGER, "second message, during the bug"))
    tips = sms_tips(world.app)
    assert len(tips) == 2  # the rescue does not join: simplest path
    assert messages_of(world.app, tips[1].id) == ["second message, during the bug"]
    assert reply is not None
    assert tips[1].report_number in reply
    assert "911" in reply

    monkeypatch.setattr(service, "keep_text", broken)
    reply = reply_of(text(world.app, STRANGER, "third"))
    assert reply is not None
    assert "could not take your message" in reply
    assert "988" in reply


def test_a_standard_tip_sent_to_them_gets_its_receipt_recorded(world: World) -> None:
    tip_id = world.tip(level=TipLevel.STANDARD, tip_type="bullying")
    world.clock.advance(timedelta(minutes=16))  # past the review hold
    world.run()
    report = report_number(world.app, tip_id)
    principal = world.contact("Angela Brooks")
    assert any(
        r.state is NotificationState.SENT for r in world.rows(tip_id, contact_id=principal.id)
    )

    assert reply_of(text(world.app, PRINCIPAL, "1")) == commands.report_number_needed_reply(
        service.EXAMPLE_REPORT
    )  # "1" alone confirms nothing
    reply = reply_of(text(world.app, PRINCIPAL, f"1 {report}"))

    assert reply is not None
    assert reply.startswith(f"Receipt recorded: report {report}. Thank you.")
    assert "receipt.confirmed" in world.events(tip_id)


def test_the_simulated_network_delivers_the_answers(
    make_app: Callable[..., Flask], clock: ManualClock
) -> None:
    """The dev phone's network texts the real webhook and takes its TwiML like Twilio would."""
    app = make_app()
    services = hotline(app)
    base = services.settings.public_base_url
    sim = SimulatedPhoneNetwork(
        account_sid="AC" + "0" * 32,
        auth_token=services.webhook_auth_token,
        hotline_number=services.settings.hotline_number,
        voice_url=f"{base}/twilio/voice",
        voice_status_url=f"{base}/twilio/voice/status",
        sms_url=f"{base}/twilio/sms",
        clock=clock,
        transport=FlaskClientTransport(app),
    )
    sim.text_hotline(STRANGER, "someone wrote a threat on the bathroom wall")
    sim.text_hotline(STRANGER, "", media=[(b"\xff\xd8 fake jpeg", "image/jpeg")])
    sim.tick()
    [tip] = sms_tips(app)
    inbox = [m.body for m in sim.handset_inbox(STRANGER)]
    assert inbox[0].startswith("Emergency? Call 911.")
    assert "School safety tip line: we got your message." in inbox[0]
    assert f"Report {tip.report_number}, PIN" in inbox[0]
    assert inbox[1].startswith(f"Added to report {tip.report_number}.")
    media = [e for e in world_events(app, tip.id) if e.kind == "message.media"]
    assert len(media) == 1
    assert media[0].data["media"][0]["content_type"] == "image/jpeg"

    sim.text_hotline(STRANGER, "STOP")
    sim.text_hotline(STRANGER, "one more thing")
    sim.tick()
    assert len(sim.handset_inbox(STRANGER)) == 3  # only the network's own STOP answer
    events, _ = sim.events_since(0)
    assert not [e for e in events if e.kind in ("error", "warning")]
    assert messages_of(app, tip.id)[-1] == "one more thing"
