"""The services that change tips: creating one (a public report number and a PIN the reporter
uses to follow up), adding to it, reclassifying it. Each tells the dispatcher through its entry
points (:mod:`dispatcher.entry`), in the same transaction."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dispatcher import entry as dispatch
from dispatcher.levels import level_of_type
from dispatcher.plan_writer import PlanResult
from hotline.core import timeline
from hotline.core.identity import IdentityKeyring
from hotline.models import (
    ActorType,
    Channel,
    MessageDirection,
    Recording,
    Reporter,
    School,
    Tip,
    TipEventKind,
    TipLevel,
    TipMessage,
    TipStatus,
)


def random_digits(min_len: int, max_len: int) -> str:
    """Random digits, ``min_len`` to ``max_len`` long, never starting with 0 (read aloud, a
    leading "zero" is the digit callers most often drop)."""
    length = min_len + secrets.randbelow(max_len - min_len + 1)
    return str(1 + secrets.randbelow(9)) + "".join(
        str(secrets.randbelow(10)) for _ in range(length - 1)
    )


def new_report_number(session: Session) -> str:
    while True:
        candidate = random_digits(6, 8)
        if session.scalar(select(Tip.id).where(Tip.report_number == candidate)) is None:
            return candidate


def new_pin() -> str:
    return random_digits(4, 6)


@dataclass(frozen=True)
class NewTip:
    tip: Tip
    #: Said to the reporter once and never stored in clear.
    pin: str


def create_tip(
    session: Session,
    keyring: IdentityKeyring,
    *,
    channel: Channel,
    level: TipLevel,
    received_at: datetime,
    language: str = "en",
    category: str | None = None,
    tip_type: str | None = None,
    school: School | None = None,
    reporter: Reporter | None = None,
    status: TipStatus = TipStatus.INTAKE,
) -> NewTip:
    report_number = new_report_number(session)
    pin = new_pin()
    pin_hash, pin_key_id = keyring.hash_pin(report_number, pin)
    tip = Tip(
        report_number=report_number,
        pin_hash=pin_hash,
        pin_key_id=pin_key_id,
        channel=channel,
        language=language,
        category=category,
        level=level,
        type=tip_type,
        school=school,
        reporter=reporter,
        status=status,
        received_at=received_at,
        updated_at=received_at,
    )
    session.add(tip)
    session.flush()
    timeline.record(
        session,
        tip,
        TipEventKind.TIP_RECEIVED,
        at=received_at,
        actor_type=ActorType.REPORTER,
        channel=channel.value,
        level=level.value,
        category=category,
        school_id=None if school is None else school.id,
    )
    dispatch.on_tip_created(session, tip)
    return NewTip(tip=tip, pin=pin)


# Categories the reporter picks, and the provisional level and type they give -------------------

#: category → (level, type). The type table and later re-classification come with the
#: dispatcher; these are the provisional values an agent reviews.
CATEGORY_LEVELS: dict[str, tuple[TipLevel, str | None]] = {
    "threat": (TipLevel.CRITICAL, "threat_of_violence"),
    "self_harm": (TipLevel.CRITICAL, "self_harm"),
    "bullying": (TipLevel.STANDARD, "bullying"),
    "drugs": (TipLevel.STANDARD, "drugs"),
    # "Something else" and anything unknown: Standard, for an agent to review.
    "other": (TipLevel.STANDARD, None),
}


def level_for_category(category: str | None) -> tuple[TipLevel, str | None]:
    return CATEGORY_LEVELS.get(category or "other", CATEGORY_LEVELS["other"])


#: Wrong PINs in a row before a report's follow-up is locked, and for how long.
FOLLOWUP_LOCK_AFTER = 5
FOLLOWUP_LOCK_FOR = timedelta(hours=1)


def find_tip_for_followup(
    session: Session, keyring: IdentityKeyring, report_number: str, pin: str, now: datetime
) -> Tip | None:
    """The tip when the number and PIN match and the report is not locked, else None. The
    caller is never told which of the three it was."""
    tip = session.scalar(select(Tip).where(Tip.report_number == report_number))
    if tip is None:
        return None
    if tip.followup_locked_until is not None and tip.followup_locked_until > now:
        return None
    if not keyring.check_pin(tip.report_number, pin, tip.pin_hash, tip.pin_key_id):
        return None
    return tip


def record_followup_failure(
    session: Session, report_number: str, now: datetime, channel: Channel
) -> Tip | None:
    """Count a wrong PIN against the report (if there is one) and lock it after a few. The count
    is one atomic increment: wrong PINs tried at once on several lines all count."""
    counted = session.execute(
        update(Tip)
        .where(Tip.report_number == report_number)
        .values(followup_failures=Tip.followup_failures + 1, updated_at=now)
        .returning(Tip.id, Tip.followup_failures)
        .execution_options(synchronize_session="fetch")
    ).first()
    if counted is None:
        return None
    tip_id, failures = counted
    tip = session.get_one(Tip, tip_id)
    timeline.record(
        session,
        tip,
        TipEventKind.FOLLOWUP_FAILED,
        at=now,
        actor_type=ActorType.REPORTER,
        channel=channel.value,
        failures=failures,
    )
    if failures >= FOLLOWUP_LOCK_AFTER:
        locked = session.execute(
            update(Tip)
            .where(Tip.id == tip_id, Tip.followup_failures >= FOLLOWUP_LOCK_AFTER)
            .values(followup_locked_until=now + FOLLOWUP_LOCK_FOR, followup_failures=0)
            .execution_options(synchronize_session="fetch")
        )
        if getattr(locked, "rowcount", 0):
            timeline.record(
                session,
                tip,
                TipEventKind.FOLLOWUP_LOCKED,
                at=now,
                until=(now + FOLLOWUP_LOCK_FOR).isoformat(),
            )
    return tip


def record_followup_success(session: Session, tip: Tip, now: datetime, channel: Channel) -> None:
    tip.followup_failures = 0
    tip.updated_at = now
    timeline.record(
        session,
        tip,
        TipEventKind.FOLLOWUP_STARTED,
        at=now,
        actor_type=ActorType.REPORTER,
        channel=channel.value,
    )


def attach_recording(
    session: Session,
    tip: Tip,
    *,
    recording_sid: str,
    url: str,
    duration_seconds: int | None,
    call_id: int | None,
    now: datetime,
    followup: bool = False,
) -> Recording:
    """Put a recording on the tip (once: a repeated delivery finds the row already there).

    A tip with a recording is complete: one in intake, or marked incomplete because the hang-up
    was learned before the recording (the two arrive in either order), is open."""
    recording = session.scalar(select(Recording).where(Recording.sid == recording_sid))
    if recording is None:
        recording = Recording(
            sid=recording_sid,
            url=url,
            status="processing",
            duration_seconds=duration_seconds,
            call_id=call_id,
            tip_id=tip.id,
            created_at=now,
            updated_at=now,
        )
        session.add(recording)
    else:
        recording.tip_id = tip.id
        recording.call_id = recording.call_id or call_id
        if recording.duration_seconds is None:
            recording.duration_seconds = duration_seconds
        recording.updated_at = now
    session.flush()
    timeline.record(
        session,
        tip,
        TipEventKind.FOLLOWUP_RECORDING if followup else TipEventKind.RECORDING_ADDED,
        at=now,
        actor_type=ActorType.REPORTER,
        recording_id=recording.id,
        duration_seconds=duration_seconds,
    )
    if tip.status in (TipStatus.INTAKE, TipStatus.INCOMPLETE):
        tip.status = TipStatus.OPEN
        timeline.record(session, tip, TipEventKind.TIP_OPENED, at=now)
    tip.updated_at = now
    dispatch.on_information_added(
        session,
        tip,
        now=now,
        note="more information was added by the reporter" if followup else "a recording was added",
    )
    return recording


def finish_intake(session: Session, tip: Tip, now: datetime) -> None:
    """The reporter went through the whole intake (with or without a recording)."""
    if tip.status is TipStatus.INTAKE:
        tip.status = TipStatus.OPEN
        tip.updated_at = now
        timeline.record(session, tip, TipEventKind.TIP_OPENED, at=now)


def mark_incomplete(session: Session, tip: Tip, now: datetime, *, step: str) -> None:
    """The reporter hung up or went silent before finishing: keep what was gathered."""
    if tip.status is TipStatus.INTAKE:
        tip.status = TipStatus.INCOMPLETE
        tip.updated_at = now
        timeline.record(
            session,
            tip,
            TipEventKind.TIP_INCOMPLETE,
            at=now,
            actor_type=ActorType.REPORTER,
            step=step,
        )


def messages_for_reporter(session: Session, tip: Tip, limit: int = 5) -> list[TipMessage]:
    """The latest messages left for the reporter, oldest first."""
    rows = session.scalars(
        select(TipMessage)
        .where(TipMessage.tip_id == tip.id, TipMessage.direction == MessageDirection.TO_REPORTER)
        .order_by(TipMessage.created_at.desc(), TipMessage.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


def mark_messages_heard(
    session: Session, tip: Tip, message_ids: Sequence[int], now: datetime, channel: Channel
) -> None:
    rows = session.scalars(
        select(TipMessage).where(TipMessage.tip_id == tip.id, TipMessage.id.in_(message_ids))
    ).all()
    for row in rows:
        row.heard_at = now
    if rows:
        timeline.record(
            session,
            tip,
            TipEventKind.MESSAGES_HEARD,
            at=now,
            actor_type=ActorType.REPORTER,
            channel=channel.value,
            message_ids=[r.id for r in rows],
        )


def leave_message_for_reporter(
    session: Session,
    tip: Tip,
    body: str,
    *,
    actor_type: ActorType,
    actor_id: str | int | None,
    now: datetime,
) -> TipMessage:
    message = TipMessage(
        tip_id=tip.id,
        direction=MessageDirection.TO_REPORTER,
        body=body,
        actor_type=actor_type,
        actor_id=None if actor_id is None else str(actor_id),
        created_at=now,
    )
    session.add(message)
    session.flush()
    timeline.record(
        session,
        tip,
        TipEventKind.MESSAGE_TO_REPORTER,
        at=now,
        actor_type=actor_type,
        actor_id=actor_id,
        message_id=message.id,
    )
    return message


def change_classification(
    session: Session,
    tip: Tip,
    *,
    now: datetime,
    actor_type: ActorType,
    actor_id: str | int | None,
    tip_type: str | None = None,
    level: TipLevel | None = None,
    possible_crime: bool | None = None,
) -> PlanResult | None:
    """Change a tip's type, level or crime flag (the console calls this). The notifications are
    re-planned from the tip's arrival time, and the change is on the timeline."""
    before = {"type": tip.type, "level": tip.level.value, "possible_crime": tip.possible_crime}
    if tip_type is not None:
        tip.type = tip_type
        if level is None:
            level = level_of_type(tip_type)
    if level is not None:
        tip.level = level
    if possible_crime is not None:
        tip.possible_crime = possible_crime
    after = {"type": tip.type, "level": tip.level.value, "possible_crime": tip.possible_crime}
    if after == before:
        return None
    tip.updated_at = now
    timeline.record(
        session,
        tip,
        TipEventKind.TIP_RECLASSIFIED,
        at=now,
        actor_type=actor_type,
        actor_id=actor_id,
        before=before,
        after=after,
    )
    session.flush()
    return dispatch.on_tip_changed(session, tip, now)


def set_school(
    session: Session,
    tip: Tip,
    school_id: int | None,
    *,
    now: datetime,
    actor_type: ActorType,
    actor_id: str | int | None = None,
    how: str,
) -> PlanResult | None:
    """Set or change the tip's school (the text bot from the reporter's words, or an agent).
    Its notifications are re-planned from the tip's arrival time: the new school's people are
    told within the same deadline, and what had not gone out to the old one is cancelled.
    ``how`` says on the timeline how the school was known ("code", "name", "choice")."""
    if tip.school_id == school_id:
        return None
    before = tip.school_id
    tip.school_id = school_id
    tip.school_expected_until = None
    tip.updated_at = now
    timeline.record(
        session,
        tip,
        TipEventKind.TIP_SCHOOL_SET,
        at=now,
        actor_type=actor_type,
        actor_id=actor_id,
        before=before,
        after=school_id,
        how=how,
    )
    session.flush()
    session.expire(tip, ["school"])
    return dispatch.on_tip_changed(session, tip, now)
