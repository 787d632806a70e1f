"""New information on a tip already sent: endusers hear of it again, by the level's rules (no
texts at 3 a.m. for a Standard tip) and merged (one update per person per interval, carrying
everything new; a Critical one never held more than two minutes)."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatcher.plan_writer import CRITICAL_UPDATE_HOLD, UPDATE_EVERY
from hotline.core.tips import attach_recording
from hotline.models import (
    NotificationChannel,
    NotificationPurpose,
    NotificationState,
    Tip,
    TipLevel,
)
from tests.support.dispatch_world import CHICAGO, SCHOOL_HOURS, World

# Wednesday 03:00 in Chicago, the night after SCHOOL_HOURS.
NIGHT = datetime(2026, 3, 11, 3, 0, tzinfo=CHICAGO)
MORNING = datetime(2026, 3, 11, 7, 0, tzinfo=CHICAGO)


def add_information(world: World, tip_id: int, n: int) -> None:
    """The reporter adds something (a follow-up recording), as the voice menu does."""
    with world.app.app_context(), world.services.db.session() as s:
        attach_recording(
            s,
            s.get_one(Tip, tip_id),
            recording_sid=f"RE{n:032x}",
            url=f"https://api.twilio.com/recordings/RE{n:032x}",
            duration_seconds=12,
            call_id=None,
            now=world.clock.now(),
            followup=True,
        )


def updates(world: World, tip_id: int, channel: NotificationChannel) -> list[object]:
    return [
        r for r in world.rows(tip_id, channel=channel) if r.purpose is NotificationPurpose.UPDATE
    ]


def sent_updates(world: World, tip_id: int, channel: NotificationChannel) -> int:
    return sum(1 for r in updates(world, tip_id, channel) if r.state is NotificationState.SENT)  # type: ignore[attr-defined]


def test_a_standard_tips_updates_at_night_are_e_mailed_merged_and_texted_in_the_morning(
    world: World,
) -> None:
    tip_id = world.tip(level=TipLevel.STANDARD, tip_type="bullying")
    world.clock.advance(timedelta(minutes=16))  # the review hold is over: e-mails and texts go
    world.run()
    emailed = len(world.mail.messages)
    texted = len(world.phone.messages)
    assert emailed == 3
    assert texted == 3

    world.clock.set(NIGHT)
    for n in range(5):  # five follow-ups within four minutes
        add_information(world, tip_id, n)
        world.run()
        world.clock.advance(60)
    # One update e-mail to each of the three at once; the other four merged into the next.
    assert len(world.mail.messages) == emailed + 3
    assert len(world.phone.messages) == texted  # no texts at night
    world.clock.set(NIGHT + UPDATE_EVERY)
    world.run()
    assert len(world.mail.messages) == emailed + 6
    latest = world.mail.messages[-1].text
    assert "more information was added by the reporter (4 times)" in latest
    assert len(world.phone.messages) == texted

    world.clock.set(MORNING)
    world.run()
    # One text each in the morning, for everything of the night.
    assert len(world.phone.messages) == texted + 3
    assert "5 new items" in world.phone.messages[-1].body


def test_a_critical_tips_updates_are_merged_but_never_held_more_than_two_minutes(
    world: World,
) -> None:
    tip_id = world.tip()
    world.run()
    assert len(world.mail.messages) == 3
    start = world.clock.now()
    add_information(world, tip_id, 1)
    world.run()
    assert len(world.mail.messages) == 6  # the first update goes at once
    world.clock.advance(30)
    add_information(world, tip_id, 2)
    world.clock.advance(30)
    add_information(world, tip_id, 3)
    world.run()
    assert len(world.mail.messages) == 6  # merged
    world.clock.set(start + timedelta(seconds=30) + CRITICAL_UPDATE_HOLD)
    world.run()
    assert len(world.mail.messages) == 9
    assert "(2 times)" in world.mail.messages[-1].text
    assert SCHOOL_HOURS <= world.clock.now()
