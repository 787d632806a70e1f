"""The anonymous conversation: an agent's reply reaches the reporter through the outbox (once,
surviving a restart), its delivery states move forward only, 21610 marks the reporter opted out,
the thread names the reporter by a pseudonym and never by number."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hotline.models import (
    ActorType,
    Alert,
    AlertKind,
    MessageDirection,
    Notification,
    NotificationPurpose,
    NotificationState,
    Reporter,
    Tip,
    TipLevel,
)
from hotline.telephony.ports import FetchedMedia, TelephonyError, TelephonyErrorKind
from sms import conversation
from sms.conversation import ReplyRefused, segments
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.texting import STRANGER, STRANGER_DIGITS, database_text, reply_of, text
from tests.support.twilio_driver import TwilioDriver


def reported(world: World, body: str = "someone is selling vapes at 1101") -> int:
    assert reply_of(text(world.app, STRANGER, body)) is not None
    with world.services.db.sessionmaker() as s:
        return s.scalars(select(Tip.id)).one()


def reply(world: World, tip_id: int, body: str) -> int:
    with world.app.app_context(), world.services.db.session() as s:
        message = conversation.send_reply(
            s,
            s.get_one(Tip, tip_id),
            body,
            actor_type=ActorType.AGENT,
            actor_id=7,
            now=world.clock.now(),
        )
        return message.id


def reply_row(world: World, message_id: int) -> Notification:
    with world.services.db.sessionmaker() as s:
        return s.scalars(select(Notification).where(Notification.message_id == message_id)).one()


def lose_queued_jobs(world: World) -> None:
    """What a restart does to the in-memory job queue: the jobs are gone, the rows stay."""
    world.services.jobs.drain(lambda _name, _args: None)  # type: ignore[attr-defined]


def texts_to_reporter(world: World) -> list[str]:
    return [m.body for m in world.phone.messages if m.to == STRANGER]


def status(world: World, row: Notification, message_status: str, error: str = "") -> None:
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    answer = twilio.post(
        f"/twilio/alert/sms-status?n={row.id}",
        {"MessageSid": row.provider_sid or "", "MessageStatus": message_status, "ErrorCode": error},
    )
    assert answer.status_code == 200


def test_a_reply_reaches_the_reporter_once_from_the_hotline_number(world: World) -> None:
    tip_id = reported(world)
    message_id = reply(world, tip_id, "Thank you. Is it happening right now?")
    world.drain()
    world.run()
    world.run()
    assert texts_to_reporter(world) == ["Thank you. Is it happening right now?"]
    [sent] = [m for m in world.phone.messages if m.to == STRANGER]
    assert sent.from_ == world.services.settings.hotline_number
    assert sent.status_callback is not None
    assert "/twilio/alert/sms-status?n=" in sent.status_callback
    row = reply_row(world, message_id)
    assert (row.purpose, row.state) == (NotificationPurpose.REPORTER_REPLY, NotificationState.SENT)
    assert row.contact_id is None
    assert row.phone_number_id is None


def test_a_reply_survives_a_restart_before_it_was_sent(world: World) -> None:
    tip_id = reported(world)
    reply(world, tip_id, "Are you safe?")
    # The queued job is lost (a restart): the sweep sends the row all the same.
    lose_queued_jobs(world)
    assert texts_to_reporter(world) == []
    world.clock.advance(120)
    world.run()
    assert texts_to_reporter(world) == ["Are you safe?"]


def test_delivery_states_move_forward_only_and_show_in_the_thread(world: World) -> None:
    tip_id = reported(world)
    message_id = reply(world, tip_id, "Are you safe?")
    world.run()
    row = reply_row(world, message_id)
    for state in ("sent", "queued", "delivered", "sent"):
        status(world, row, state)
    with world.services.db.sessionmaker() as s:
        thread = conversation.thread(s, tip_id)
    [out] = [m for m in thread.messages if m.direction is MessageDirection.TO_REPORTER]
    assert out.delivery == "delivered"
    assert out.author == "agent:7"
    assert "message.to_reporter" in [kind for _, kind in thread.timeline]


def test_a_replan_never_cancels_a_reply(world: World) -> None:
    tip_id = reported(world)
    world.run()
    lose_queued_jobs(world)
    message_id = reply(world, tip_id, "Which bathroom?")
    lose_queued_jobs(world)
    assert reply_of(text(world.app, STRANGER, "and now he says he has a gun")) is not None
    with world.services.db.sessionmaker() as s:
        assert s.get_one(Tip, tip_id).level is TipLevel.CRITICAL  # re-planned
    assert reply_row(world, message_id).state is NotificationState.PLANNED
    world.run()
    assert "Which bathroom?" in texts_to_reporter(world)


def test_21610_marks_the_reporter_opted_out_and_the_agent_sees_it(world: World) -> None:
    tip_id = reported(world)
    world.phone.fail_next(
        "send_sms",
        TelephonyError(TelephonyErrorKind.PERMANENT_NUMBER, "unsubscribed", code=21610),
    )
    reply(world, tip_id, "Are you safe?")
    world.run()
    with world.services.db.sessionmaker() as s:
        assert s.scalars(select(Reporter)).one().sms_opted_out
        thread = conversation.thread(s, tip_id)
        failed = s.scalars(select(Notification.state).where(Notification.message_id.is_not(None)))
        assert list(failed) == [NotificationState.FAILED]
    assert thread.reporter_opted_out
    assert "reporter.sms_opted_out" in world.events(tip_id)
    with world.services.db.sessionmaker() as s:
        alerts = s.scalars(select(Alert).where(Alert.kind == AlertKind.NOTIFICATION_FAILED))
        messages = [a.message for a in alerts]
    assert any("a text to the reporter failed" in m for m in messages)
    with pytest.raises(ReplyRefused, match="opted out"):
        reply(world, tip_id, "hello?")


def test_21610_in_a_status_callback_marks_the_reporter_opted_out(world: World) -> None:
    tip_id = reported(world)
    message_id = reply(world, tip_id, "Are you safe?")
    world.run()
    status(world, reply_row(world, message_id), "undelivered", "21610")
    with world.services.db.sessionmaker() as s:
        assert s.scalars(select(Reporter)).one().sms_opted_out


def test_an_empty_or_too_long_reply_is_refused(world: World) -> None:
    tip_id = reported(world)
    with pytest.raises(ReplyRefused, match="empty"):
        reply(world, tip_id, "   ")
    with pytest.raises(ReplyRefused, match="longer than"):
        reply(world, tip_id, "x" * (conversation.MAX_REPLY_CHARACTERS + 1))


@pytest.mark.parametrize(
    ("body", "count"),
    [
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("x" * 306, 2),
        ("x" * 307, 3),
        ("é" * 160, 1),  # é is GSM-7
        ("😨" * 70, 1),
        ("😨" * 71, 2),
        ("他" * 140, 3),
        ("[" * 80, 1),  # an escaped character counts twice
        ("[" * 81, 2),
    ],
)
def test_the_segment_count_the_agent_sees(body: str, count: int) -> None:
    assert segments(body) == count


def test_the_thread_names_a_pseudonym_and_marks_read_once(world: World) -> None:
    tip_id = reported(world)
    assert reply_of(text(world.app, STRANGER, "it is the second floor")) is not None
    with world.app.app_context(), world.services.db.session() as s:
        tip = s.get_one(Tip, tip_id)
        first = conversation.mark_read(
            s, tip, actor_type=ActorType.AGENT, actor_id=7, now=world.clock.now()
        )
        again = conversation.mark_read(
            s, tip, actor_type=ActorType.AGENT, actor_id=8, now=world.clock.now()
        )
        thread = conversation.thread(s, tip_id)
    assert (first, again) == (2, 0)
    assert thread.reporter is not None
    assert thread.reporter.startswith("Reporter R-")
    assert len(thread.reporter) == len("Reporter R-7Q2K")
    assert all(m.read_at is not None for m in thread.messages)
    assert world.events(tip_id).count("messages.read") == 1
    shown = repr(thread)
    for digits in STRANGER_DIGITS:
        assert digits not in shown
    dump = database_text(world.app)
    for digits in STRANGER_DIGITS:
        assert digits not in dump


def test_the_thread_shows_the_reporters_pictures(world: World) -> None:
    media = {
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        "MediaContentType0": "image/jpeg",
    }
    world.phone.media[media["MediaUrl0"]] = FetchedMedia(b"\xff\xd8 a jpeg", "image/jpeg")
    assert reply_of(text(world.app, STRANGER, "look at this, at 1101", **media)) is not None
    assert reply_of(text(world.app, STRANGER, "", **media)) is not None
    world.run()
    with world.services.db.sessionmaker() as s:
        tip_id = s.scalars(select(Tip.id)).one()
        thread = conversation.thread(s, tip_id)
    assert [(m.state, m.content_type) for m in thread.media] == [
        ("fetched", "image/jpeg"),
        ("fetched", "image/jpeg"),
    ]
    assert thread.media[0].message_id == thread.messages[0].id
    assert thread.media[1].message_id is None
