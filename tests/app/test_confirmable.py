"""Which alerts a phone number may confirm: one function for the voice and the SMS path."""

from __future__ import annotations

from sqlalchemy import select

from dispatcher.confirm import ConfirmOutcome, confirm_notified, confirmable_notifications
from dispatcher.plan_writer import DONE_STATES, plan_tip
from hotline.models import (
    Contact,
    ContactRole,
    LegKind,
    LegState,
    Notification,
    NotificationChannel,
    NotificationState,
    Tip,
)
from tests.support.dispatch_world import World

PRINCIPAL = "+13125550111"  # Angela Brooks, Lakeview High School (1101)
PSAP_LINE = "+13125550190"  # Lakeview County Emergency Communications, district-wide


def report_of(world: World, tip_id: int) -> str:
    with world.services.db.sessionmaker() as s:
        return s.get_one(Tip, tip_id).report_number


def confirmable(world: World, number: str | None, report: str) -> list[tuple[int, int | None]]:
    """(row id, contact id) of what ``number`` may confirm of ``report``."""
    with world.services.db.sessionmaker() as s:
        rows = confirmable_notifications(s, number=number, report_number=report)
        return [(r.id, r.contact_id) for r in rows]


def sent_ids(world: World, tip_id: int, contact: Contact) -> set[int]:
    return {r.id for r in world.rows(tip_id, contact_id=contact.id) if r.state in DONE_STATES}


def test_only_rows_already_sent_to_the_number_count(world: World) -> None:
    tip_id = world.tip()
    with world.services.db.session() as s:
        plan_tip(s, tip_id, world.clock.now())  # planned, not sent
    report = report_of(world, tip_id)
    principal = world.contact("Angela Brooks")
    assert world.rows(tip_id, contact_id=principal.id)  # planned...
    assert confirmable(world, PRINCIPAL, report) == []  # ...but nothing went out yet

    world.run()
    rows = confirmable(world, PRINCIPAL, report)
    assert {row for row, _ in rows} == sent_ids(world, tip_id, principal)
    channels = {r.channel for r in world.rows(tip_id, contact_id=principal.id)}
    assert {NotificationChannel.VOICE, NotificationChannel.SMS, NotificationChannel.EMAIL} <= (
        channels
    )
    assert {contact for _, contact in rows} == {principal.id}


def test_nothing_for_another_number_an_unknown_report_or_a_withheld_number(world: World) -> None:
    tip_id = world.tip()
    other = world.tip("1102")  # the middle school: not sent to Lakeview High's principal
    world.run()
    report = report_of(world, tip_id)
    assert confirmable(world, PRINCIPAL, report)
    assert confirmable(world, PRINCIPAL, report_of(world, other)) == []
    assert confirmable(world, "+13125550199", report) == []  # a number in no directory
    assert confirmable(world, "+13125550121", report) == []  # a contact, not of this school
    assert confirmable(world, None, report) == []
    assert confirmable(world, "anonymous", report) == []
    assert confirmable(world, PRINCIPAL, "9" * len(report)) == []
    assert confirmable(world, PRINCIPAL, "") == []


def test_a_confirmed_leg_still_counts_as_already_confirmed(world: World) -> None:
    tip_id = world.tip()
    world.run()
    report = report_of(world, tip_id)
    with world.services.db.session() as s:
        rows = confirmable_notifications(s, number=PRINCIPAL, report_number=report)
        outcome = confirm_notified(s, rows, via="sms", now=world.clock.now())
    assert outcome is ConfirmOutcome.CONFIRMED
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].state is LegState.CONFIRMED
    assert legs[LegKind.PSAP].state is LegState.OPEN  # only the principal's own leg

    with world.services.db.session() as s:
        rows = confirmable_notifications(s, number=PRINCIPAL, report_number=report)
        assert rows  # still theirs to confirm: the answer is "already confirmed"
        outcome = confirm_notified(s, rows, via="sms", now=world.clock.now())
    assert outcome is ConfirmOutcome.ALREADY
    assert world.events(tip_id).count("leg.confirmed") == 1


def test_a_shared_line_confirms_for_each_contact_notified_on_it(world: World) -> None:
    """The PSAP's line is also another agency's night desk: what was sent to either (the desk
    only by e-mail) may be confirmed from it, each on its own leg."""
    psap = world.contact("Lakeview County Emergency")
    with world.services.db.session() as s:
        desk = Contact(
            district_id=s.get_one(Contact, psap.id).district_id,
            school_id=None,
            role=ContactRole.LAW_ENFORCEMENT,
            priority=2,
            name="Night desk (shared line)",
            phone_number_id=psap.phone_number_id,
            email="desk@police.example.org",
            created_at=world.clock.now(),
            updated_at=world.clock.now(),
        )
        s.add(desk)
    tip_id = world.tip()
    world.run()
    for _ in range(10):  # calls are spaced: let the PSAP's go out
        if all(r.state is NotificationState.SENT for r in world.rows(tip_id, contact_id=psap.id)):
            break
        world.clock.advance(2)
        world.run()
    with world.services.db.session() as s:
        desk_id = s.scalars(select(Contact.id).where(Contact.name.startswith("Night desk"))).one()
        s.add(  # an e-mail to the desk (sent below): no phone on the row, only the contact
            Notification(
                tip_id=tip_id,
                leg_id=None,
                purpose=world.rows(tip_id)[0].purpose,
                channel=NotificationChannel.EMAIL,
                contact_id=desk_id,
                email="desk@police.example.org",
                level=world.rows(tip_id)[0].level,
                state=NotificationState.PLANNED,
                due_at=world.clock.now(),
                deadline_at=world.clock.now(),
                created_at=world.clock.now(),
                updated_at=world.clock.now(),
            )
        )
    world.run()
    assert world.rows(tip_id, contact_id=desk_id)[0].state is NotificationState.SENT
    report = report_of(world, tip_id)
    rows = confirmable(world, PSAP_LINE, report)
    assert {contact for _, contact in rows} == {psap.id, desk_id}

    with world.services.db.session() as s:
        found = confirmable_notifications(s, number=PSAP_LINE, report_number=report)
        assert confirm_notified(s, found, via="sms", now=world.clock.now()) is (
            ConfirmOutcome.CONFIRMED
        )
    legs = world.legs(tip_id)
    assert legs[LegKind.PSAP].state is LegState.CONFIRMED
    assert legs[LegKind.PSAP].confirmed_by_contact_id == psap.id
    assert legs[LegKind.POC].state is LegState.OPEN

    with world.services.db.session() as s:  # the desk leaves: its e-mail is no longer theirs
        s.get_one(Contact, desk_id).active = False
    assert {contact for _, contact in confirmable(world, PSAP_LINE, report)} == {psap.id}
