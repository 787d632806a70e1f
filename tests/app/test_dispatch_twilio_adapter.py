"""The dispatcher sending through the production Twilio adapter to the local fake of Twilio's
REST API: what Twilio's 429, 5xx and timeouts on Calls.create do to an alert."""

from __future__ import annotations

import pytest

from hotline.models import NotificationChannel, NotificationState
from tests.support.dispatch_world import World
from tests.support.twilio_fake import PATIENT_READ_TIMEOUT, TwilioFake

PRINCIPAL = "+13125550111"


def calls_to(fake: TwilioFake, number: str) -> int:
    """Calls that exist at "Twilio" (refused requests created none)."""
    return sum(1 for call in fake.calls.values() if call.get("to") == number)


def requests_for(fake: TwilioFake, number: str) -> int:
    return sum(1 for r in fake.requests_to("CreateCall") if r.field("To") == number)


def principal_row(world: World, tip_id: int):  # type: ignore[no-untyped-def]
    return next(
        r
        for r in world.rows(tip_id, channel=NotificationChannel.VOICE, position=0)
        if world.number_of(r.contact_id) == PRINCIPAL
    )


def test_429_is_retried_with_backoff_and_the_call_goes_once(live: tuple[World, TwilioFake]) -> None:
    world, fake = live
    fake.fail_next(2, status=429, path_contains="/Calls.json")
    tip_id = world.tip()
    world.run()
    for _ in range(4):
        world.clock.advance(5)
        world.run()
    assert principal_row(world, tip_id).state is NotificationState.SENT
    # Two attempts were refused (whichever first-round calls they hit), each call was then
    # created once.
    assert len(fake.requests_to("CreateCall")) == len(fake.calls) + 2
    assert calls_to(fake, PRINCIPAL) == calls_to(fake, "+13125550190") == 1
    assert "notification.retry" in world.events(tip_id)


@pytest.mark.parametrize(
    ("fault", "live"),
    [("500", PATIENT_READ_TIMEOUT), ("timeout", 0.5)],
    ids=["500", "timeout"],
    indirect=["live"],
)
def test_5xx_or_timeout_after_sending_is_never_resent(
    live: tuple[World, TwilioFake], fault: str
) -> None:
    world, fake = live
    if fault == "500":
        fake.fail_next(1, status=500, process=True, path_contains="/Calls.json")
    else:
        fake.hang_next(1, seconds=2.0, path_contains="/Calls.json")
    tip_id = world.tip()
    world.run()
    for _ in range(3):
        world.clock.advance(5)
        world.run()
    row = principal_row(world, tip_id)
    assert row.state is NotificationState.UNKNOWN
    # The call may well exist at Twilio: it was processed once and never asked for again.
    assert requests_for(fake, PRINCIPAL) == 1
    assert calls_to(fake, PRINCIPAL) == 1
    assert "notification_unknown" in world.alerts()
    # The leg goes on with the next person on schedule.
    world.clock.advance(150)
    world.run()
    assert calls_to(fake, "+13125550112") == 1
