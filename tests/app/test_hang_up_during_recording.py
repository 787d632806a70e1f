"""A caller who hangs up while recording: Twilio posts the ``<Record>`` action and the final
status callback at the same moment, and either may commit first. Both orders must give the same
tip, the same recording and the same notifications; two webhooks of one call never overwrite
each other's state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import event, select

from hotline.core.clock import ManualClock
from hotline.directory import import_directory, sample_directory
from hotline.email.fake import FakeEmail
from hotline.models import Call as CallRow
from hotline.models import Notification, Recording, Tip, TipEvent, TipStatus
from hotline.services import hotline
from hotline.telephony.fake import FakeTelephony
from ivr_flows import flow
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import SCHOOL_HOURS, World
from tests.support.ivr_driver import Call, VoiceDriver, digits_after

Outcome = tuple[TipStatus, list[str], list[tuple[str, int, str]], list[tuple[str, str, int | None]]]


def _at_the_recording(driver: VoiceDriver, *, followup_of: tuple[str, str] | None = None) -> Call:
    call = driver.call()
    if followup_of is None:
        for keys in ("1", "1", "1", "1101#", "1"):
            call.press(keys)
    else:
        report, pin = followup_of
        for keys in ("1", "2", f"{report}#", f"{pin}#", "1"):
            call.press(keys)
    assert call.waiting_for == "record"
    return call


def _outcome(world: World, call: Call) -> Outcome:
    """The tip's status and timeline kinds, its recordings and the notifications planned."""
    with world.services.db.sessionmaker() as s:
        row = s.scalars(select(CallRow).where(CallRow.sid == call.sid)).one()
        assert row.tip_id is not None
        tip = s.get_one(Tip, row.tip_id)
        kinds = list(
            s.scalars(select(TipEvent.kind).where(TipEvent.tip_id == tip.id).order_by(TipEvent.id))
        )
        recordings = [
            (r.sid, int(r.call_id == row.id), r.status)
            for r in s.scalars(select(Recording).where(Recording.tip_id == tip.id))
        ]
        notifications = sorted(
            (n.purpose.value, n.channel.value, n.contact_id)
            for n in s.scalars(select(Notification).where(Notification.tip_id == tip.id))
        )
        return tip.status, kinds, recordings, notifications


def _hang_up_recording(world: World, *, status_first: bool) -> tuple[Call, Outcome]:
    driver = VoiceDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    call = _at_the_recording(driver)
    with world.app.app_context():
        world.drain()  # the Critical tip's first round goes out while the caller records
    handle = call.record(duration=25, hang_up=True, status_callback_first=status_first)
    assert call.ended
    world.run()
    status, kinds, recordings, notifications = _outcome(world, call)
    assert [sid for sid, _, _ in recordings] == [handle.sid]
    return call, (status, kinds, recordings, notifications)


@pytest.mark.parametrize("status_first", [False, True], ids=["action-first", "status-first"])
def test_both_orders_give_an_open_tip_with_the_recording_and_the_update(
    world: World, status_first: bool
) -> None:
    _, (status, kinds, recordings, notifications) = _hang_up_recording(
        world, status_first=status_first
    )
    assert status is TipStatus.OPEN
    assert recordings[0][1:] == (1, "completed")
    assert kinds.count("recording.added") == 1
    assert kinds.count("tip.opened") == 1
    # Endusers already told get the update about the recording, in either order.
    assert any(purpose == "update" for purpose, _, _ in notifications)
    # The timeline is history: in the second order the tip was incomplete for a moment.
    expected = ["tip.received", "recording.added", "tip.opened"]
    if status_first:
        expected.insert(1, "tip.incomplete")
    assert [k for k in kinds if k in {*expected}] == expected


def test_both_orders_plan_the_same_notifications(
    make_app: Callable[..., Flask], clock: ManualClock
) -> None:
    outcomes = []
    for hour, status_first in enumerate((False, True)):
        phone, mail = FakeTelephony(), FakeEmail()
        # An hour apart: at the same instant the second app of a run sends fewer of its first
        # round (whatever the order of the hang-up), which is not what is compared here.
        clock.set(SCHOOL_HOURS + timedelta(hours=hour))
        app = make_app(telephony=phone, email=mail)
        assert import_directory(hotline(app).db, clock, sample_directory()).ok
        _, outcome = _hang_up_recording(World(app, clock, phone, mail), status_first=status_first)
        outcomes.append(outcome)
    (status_a, kinds_a, recs_a, notes_a), (status_b, kinds_b, recs_b, notes_b) = outcomes
    assert status_a is status_b is TipStatus.OPEN
    assert [r[1:] for r in recs_a] == [r[1:] for r in recs_b]
    assert notes_a == notes_b
    # The same entries (notifications may be sent in another order); only the moment the tip
    # was incomplete is added.
    assert sorted(k for k in kinds_b if k != "tip.incomplete") == sorted(kinds_a)
    assert "tip.incomplete" in kinds_b
    assert "tip.incomplete" not in kinds_a


def test_a_follow_up_recording_after_the_hang_up_callback_is_kept_as_a_follow_up(
    world: World,
) -> None:
    driver = VoiceDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    first = _at_the_recording(driver)
    first.record(duration=10)
    text = first.heard_text_since_last_action()
    report, pin = digits_after(text, "report number"), digits_after(text, "PIN")
    first.hang_up()
    call = _at_the_recording(driver, followup_of=(report, pin))
    handle = call.record(duration=15, hang_up=True, status_callback_first=True)
    with world.services.db.sessionmaker() as s:
        tip = s.scalars(select(Tip).where(Tip.report_number == report)).one()
        assert tip.status is TipStatus.OPEN
        kinds = list(
            s.scalars(select(TipEvent.kind).where(TipEvent.tip_id == tip.id).order_by(TipEvent.id))
        )
        assert kinds.count("followup.recording") == 1
        assert s.scalars(select(Recording.tip_id).where(Recording.sid == handle.sid)).one() == (
            tip.id
        )


def test_a_message_left_after_failed_follow_ups_survives_the_hang_up_callback(
    world: World,
) -> None:
    driver = VoiceDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    call = driver.call()
    for keys in ("1", "2", *(["1234567#", "9999#"] * 3)):
        call.press(keys)
    assert call.waiting_for == "record"
    handle = call.record(duration=15, hang_up=True, status_callback_first=True)
    with world.services.db.sessionmaker() as s:
        [tip] = s.scalars(select(Tip)).all()
        assert tip.status is TipStatus.OPEN
        assert s.scalars(select(Recording.tip_id).where(Recording.sid == handle.sid)).one() == (
            tip.id
        )


def test_concurrent_turns_of_one_call_serialise_on_postgresql(
    make_app: Callable[..., Flask], clock: ManualClock, postgresql_url: str
) -> None:
    """The caller presses # and hangs up at once: the final status callback holds the call row
    while the ``<Record>`` action's turn starts. The turn must wait for it and go on from what
    the callback committed; a turn that read the row before would write its stale state back
    over the callback's (here: the PIN kept for a readback nobody will hear again)."""
    from hotline.core.calls import CallStatusUpdate, apply_call_status

    clock.set(SCHOOL_HOURS)
    app = make_app(postgresql_url)
    assert import_directory(hotline(app).db, clock, sample_directory()).ok
    db = hotline(app).db
    driver = VoiceDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    call = _at_the_recording(driver)

    holding = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def status_callback() -> None:
        try:
            with app.app_context(), db.session() as other:
                update = CallStatusUpdate(call.sid, "completed", sequence_number=99)
                apply_call_status(other, update, clock.now())
                holding.set()
                release.wait(10)
        except BaseException as exc:  # noqa: BLE001 - asserted empty by the test below
            errors.append(exc)
            holding.set()

    def is_call_read(statement: str) -> bool:
        return statement.lstrip().upper().startswith("SELECT") and "FROM calls" in statement

    def before(_conn, _cursor, statement, _parameters, _context, _executemany):  # type: ignore[no-untyped-def]
        if is_call_read(statement) and "FOR UPDATE" in statement:
            release.set()  # the turn waits for the lock; the callback commits meanwhile

    def after(_conn, _cursor, statement, _parameters, _context, _executemany):  # type: ignore[no-untyped-def]
        if is_call_read(statement):
            release.set()  # a read without the lock has already seen the old row

    worker = threading.Thread(target=status_callback)
    worker.start()
    assert holding.wait(10)
    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    try:
        handle = call.record(duration=20)
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
        release.set()
        worker.join(10)
    assert not errors
    with db.sessionmaker() as s:
        row = s.scalars(select(CallRow).where(CallRow.sid == call.sid)).one()
        assert row.ended_at is not None
        assert row.tip_id is not None
        assert flow.VoiceState.from_json(row.flow_state).pin_sealed is None
        tip = s.get_one(Tip, row.tip_id)
        assert tip.status is TipStatus.OPEN
        kinds = list(
            s.scalars(select(TipEvent.kind).where(TipEvent.tip_id == tip.id).order_by(TipEvent.id))
        )
        assert kinds == [
            "tip.received",
            "call.caller_verification",
            "tip.incomplete",
            "recording.added",
            "tip.opened",
        ]
        assert s.scalars(select(Recording.tip_id).where(Recording.sid == handle.sid)).one() == (
            tip.id
        )
