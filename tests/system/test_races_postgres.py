"""Races between two real PostgreSQL sessions: the row locks and conditional updates hold when
two people (or two workers) act on the same row at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher.confirm import Confirmation, confirm
from hotline.core.clock import ManualClock
from hotline.core.tips import create_tip, find_tip_for_followup, record_followup_failure
from hotline.directory import import_directory, sample_directory
from hotline.email.fake import FakeEmail
from hotline.models import (
    Channel,
    Contact,
    LegKind,
    NotificationLeg,
    Tip,
    TipEvent,
    TipLevel,
)
from hotline.services import hotline
from hotline.telephony.fake import FakeTelephony
from tests.support.dispatch_world import SCHOOL_HOURS, World

pytestmark = pytest.mark.postgres
T = TypeVar("T")


@pytest.fixture
def pg_world(make_app: Callable[..., Flask], clock: ManualClock, postgresql_url: str) -> World:
    phone, mail = FakeTelephony(), FakeEmail()
    clock.set(SCHOOL_HOURS)
    app = make_app(postgresql_url, telephony=phone, email=mail)
    assert import_directory(hotline(app).db, clock, sample_directory()).ok
    return World(app, clock, phone, mail)


def at_once(world: World, work: Callable[[Session, threading.Barrier], T]) -> list[T]:
    """Run ``work`` in two threads, each in its own session (committed at the end); both reach
    the barrier before either goes on."""
    barrier = threading.Barrier(2, timeout=20)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with world.app.app_context(), world.services.db.session() as s:
                results.append(work(s, barrier))
        except BaseException as exc:  # noqa: BLE001 - asserted empty by the caller
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(results) == 2
    return results


def test_two_colleagues_pressing_1_at_once_end_the_leg_once(pg_world: World) -> None:
    world = pg_world
    tip_id = world.tip()
    world.run()
    names = iter(["Brooks", "Kim"])
    lock = threading.Lock()

    def press_1(s: Session, barrier: threading.Barrier) -> Confirmation:
        with lock:
            name = next(names)
        contact = s.scalars(select(Contact).where(Contact.name.contains(name))).one()
        tip = s.get_one(Tip, tip_id)
        # Each session already holds the open leg, as the alert call's route does.
        leg = s.scalars(
            select(NotificationLeg).where(
                NotificationLeg.tip_id == tip_id, NotificationLeg.kind == LegKind.POC
            )
        ).one()
        assert leg.state.value == "open"
        barrier.wait()
        return confirm(s, tip=tip, contact=contact, via="voice", now=world.clock.now())

    results = at_once(world, press_1)
    assert sorted(r.ended_leg for r in results) == [False, True]
    winner = next(r for r in results if r.ended_leg)
    leg = world.legs(tip_id)[LegKind.POC]
    assert leg.confirmed_by_contact_id == winner.confirmed_by_contact_id
    assert world.events(tip_id).count("leg.confirmed") == 1
    assert world.events(tip_id).count("receipt.confirmed") == 1


def test_wrong_pins_tried_at_once_are_all_counted(pg_world: World) -> None:
    world = pg_world
    with world.app.app_context(), world.services.db.session() as s:
        report = create_tip(
            s,
            world.services.keyring,
            channel=Channel.VOICE,
            level=TipLevel.STANDARD,
            received_at=world.clock.now(),
        ).tip.report_number

    def wrong_pin(s: Session, barrier: threading.Barrier) -> int:
        # The session already holds the tip (as a menu turn that looked it up does) when it
        # counts the failure.
        held = s.scalars(select(Tip).where(Tip.report_number == report)).one()
        wrong = find_tip_for_followup(s, world.services.keyring, report, "0000", world.clock.now())
        assert wrong is None
        assert held.followup_failures == 0
        barrier.wait()
        tip = record_followup_failure(s, report, world.clock.now(), Channel.VOICE)
        assert tip is not None
        return tip.id

    at_once(world, wrong_pin)
    with world.services.db.sessionmaker() as s:
        tip = s.scalars(select(Tip).where(Tip.report_number == report)).one()
        assert tip.followup_failures == 2
        failed = s.scalar(
            select(func.count())
            .select_from(TipEvent)
            .where(TipEvent.tip_id == tip.id, TipEvent.kind == "followup.failed")
        )
        assert failed == 2
