"""The outbox's state changes: one table of allowed transitions, each a conditional update, so a
write that lost a race (a confirmation, the sweep) changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatcher import outbox, sender, tasks
from dispatcher.confirm import confirm
from dispatcher.outbox import LEASE, IllegalTransition, transition
from hotline.models import (
    Contact,
    LegKind,
    LegState,
    Notification,
    NotificationChannel,
    NotificationLeg,
    NotificationState,
    Tip,
)
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.twilio_driver import TwilioDriver

S = NotificationState


def planned_call(world: World, tip_id: int, position: int = 1) -> Notification:
    """A POC call still waiting for its turn (the sequential chain's next person)."""
    return world.rows(tip_id, channel=NotificationChannel.VOICE, position=position)[0]


def state_of(world: World, row_id: int) -> Notification:
    with world.services.db.sessionmaker() as s:
        return s.get_one(Notification, row_id)


def confirm_poc(world: World, tip_id: int) -> None:
    with world.app.app_context(), world.services.db.session() as s:
        tip = s.get_one(Tip, tip_id)
        principal = s.scalars(select(Contact).where(Contact.name.contains("Brooks"))).one()
        assert confirm(s, tip=tip, contact=principal, via="voice", now=world.clock.now()).ended_leg


def claimed_then_confirmed(world: World) -> tuple[int, int]:
    """A worker (token ``w/1``) claimed the next POC call; then someone on the leg confirmed."""
    tip_id = world.tip()
    world.run()
    row_id = planned_call(world, tip_id).id
    world.clock.advance(150)
    with world.services.db.session() as s:
        assert outbox.claim(s, row_id, "w/1", world.clock.now())
    confirm_poc(world, tip_id)
    return tip_id, row_id


def test_every_transition_outside_the_table_is_refused(world: World) -> None:
    tip_id = world.tip()
    world.run()
    with world.services.db.session() as s:
        now = world.clock.now()
        for frm in S:
            for to in S:
                if (frm, to) in outbox.TRANSITIONS:
                    continue
                with pytest.raises(IllegalTransition):
                    transition(s, frm, to, now=now, where=[Notification.tip_id == tip_id])
        # The claimant's changes need its token.
        with pytest.raises(IllegalTransition, match="claimant"):
            transition(s, S.SENDING, S.SENT, now=now, where=[Notification.tip_id == tip_id])


def test_nothing_writes_a_rows_state_but_transition(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row_id = planned_call(world, tip_id).id
    with (
        pytest.raises(IllegalTransition, match="only through transition"),
        world.services.db.session() as s,
    ):
        s.get_one(Notification, row_id).state = S.CANCELLED
    assert state_of(world, row_id).state is S.PLANNED


def test_another_workers_token_moves_nothing(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row_id = planned_call(world, tip_id).id
    world.clock.advance(150)
    with world.services.db.session() as s:
        assert outbox.claim(s, row_id, "worker-a/1", world.clock.now())
    with world.services.db.session() as s:
        assert not outbox.start_sending(s, row_id, "worker-a/2", world.clock.now())
        assert outbox.start_sending(s, row_id, "worker-a/1", world.clock.now())
    assert state_of(world, row_id).state is S.SENDING


def test_a_claim_of_a_confirmed_legs_row_cancels_it(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row_id = planned_call(world, tip_id).id
    with world.services.db.session() as s:
        # The leg closed without its rows being cancelled (a confirmation racing the planner).
        leg = s.get_one(NotificationLeg, state_of(world, row_id).leg_id)
        leg.state = LegState.CONFIRMED
    world.clock.advance(150)
    with world.services.db.session() as s:
        assert not outbox.claim(s, row_id, "w/1", world.clock.now())
    row = state_of(world, row_id)
    assert row.state is S.CANCELLED
    assert row.outcome == "leg-closed"


class ConfirmingLimiter:
    """A calls-per-second budget that, while the worker asks it, sees the leg confirmed, then
    says "wait": the worker postpones a row that was cancelled meanwhile."""

    def __init__(self, world: World, tip_id: int) -> None:
        self.world, self.tip_id = world, tip_id

    def acquire(self, _critical: bool) -> float:
        confirm_poc(self.world, self.tip_id)
        return 5.0


def test_a_row_cancelled_while_claimed_is_not_postponed_back_to_life(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row_id = planned_call(world, tip_id).id
    world.clock.advance(150)
    world.services.call_limiter = ConfirmingLimiter(world, tip_id)  # type: ignore[assignment]
    assert sender.send_notification(world.services, row_id, "w") == "postponed"
    row = state_of(world, row_id)
    assert row.state is S.CANCELLED
    assert row.outcome == "leg-confirmed"
    world.clock.advance(10)
    calls_before = len(world.phone.calls)
    world.run()
    assert len(world.phone.calls) == calls_before


def test_no_address_never_overwrites_a_cancellation(world: World) -> None:
    _, row_id = claimed_then_confirmed(world)
    with world.services.db.session() as s:
        assert not sender._finish(
            s, row_id, "w/1", S.CLAIMED, S.FAILED, world.clock.now(), outcome="no-address",
            error="none",
        )  # fmt: skip
    assert state_of(world, row_id).state is S.CANCELLED


def test_a_row_the_sweep_gave_up_as_unknown_stays_unknown_when_the_request_returns(
    world: World,
) -> None:
    """The worker's lease ran out while Twilio was slow: the sweep marked the row unknown (and
    the leg moved on). The late answer keeps the sid but does not turn it back into "sent"."""
    tip_id = world.tip()
    world.run()
    row_id = planned_call(world, tip_id).id
    world.clock.advance(150)

    def slow_provider() -> None:
        world.clock.advance(LEASE + timedelta(seconds=1))
        tasks.sweep(world.services)

    world.phone.meanwhile("place_call", slow_provider)
    assert sender.send_notification(world.services, row_id, "w") == "sent"
    row = state_of(world, row_id)
    assert row.state is S.UNKNOWN
    assert row.outcome == "worker-lost"
    assert row.provider_sid == world.phone.call_sids[-1]


def test_a_status_callback_faster_than_the_answer_keeps_its_outcome(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row_id = planned_call(world, tip_id).id
    world.clock.advance(150)
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)

    def callback_first() -> None:
        response = twilio.post(
            f"/twilio/alert/status?n={row_id}",
            {
                "CallSid": world.phone.call_sids[-1],
                "CallStatus": "busy",
                "SequenceNumber": "1",
                "Direction": "outbound-api",
            },
        )
        assert response.status_code == 200

    world.phone.meanwhile("place_call", callback_first)
    assert sender.send_notification(world.services, row_id, "w") == "sent"
    row = state_of(world, row_id)
    assert row.state is S.SENT
    assert row.outcome == "busy"
    # The busy callback planned the one retry of this person; "accepted" did not erase it.
    retries = [r for r in world.rows(tip_id, position=1) if r.id != row_id]
    assert len(retries) == 1
    assert retries[0].state is S.PLANNED


def test_a_leg_confirmed_between_claim_and_send_is_not_called(world: World) -> None:
    tip_id, row_id = claimed_then_confirmed(world)
    with world.services.db.session() as s:
        assert not outbox.start_sending(s, row_id, "w/1", world.clock.now())
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].state is LegState.CONFIRMED
    assert state_of(world, row_id).state is S.CANCELLED
