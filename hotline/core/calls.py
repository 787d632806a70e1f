"""Applying Twilio's call and recording status callbacks.

Callbacks arrive late, twice, or out of order. A status is applied only when its SequenceNumber is
newer than the last one applied, and a call never moves back from a later stage (a ``ringing``
that arrives after ``completed`` changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from blinker import signal
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.models import Call, CallDirection, Recording

#: Sent once when a call reaches its final status, inside the status callback's transaction, with
#: ``session``, ``call`` and ``now``: the voice menu keeps what a caller who hung up had given.
call_ended = signal("hotline.call-ended")

#: How far along a call is; a status never replaces one of a higher stage.
CALL_STAGE: dict[str, int] = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "answered": 2,
    "completed": 3,
    "busy": 3,
    "failed": 3,
    "no-answer": 3,
    "canceled": 3,
}
FINAL_CALL_STATUSES = frozenset(s for s, stage in CALL_STAGE.items() if stage == 3)

RECORDING_STAGE: dict[str, int] = {"in-progress": 0, "completed": 1, "absent": 1, "failed": 1}


def _int_or_none(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or len(value) > 9:
        return None
    return int(value)


@dataclass(frozen=True)
class CallStatusUpdate:
    call_sid: str
    status: str
    sequence_number: int | None
    duration_seconds: int | None = None
    answered_by: str | None = None
    direction: CallDirection = CallDirection.INBOUND

    @classmethod
    def from_params(cls, params: dict[str, str]) -> CallStatusUpdate | None:
        sid = params.get("CallSid", "")
        status = params.get("CallStatus", "").strip().lower()
        if not sid or len(sid) > 64 or status not in CALL_STAGE:
            return None
        direction = (
            CallDirection.OUTBOUND
            if params.get("Direction", "").startswith("outbound")
            else CallDirection.INBOUND
        )
        answered_by = params.get("AnsweredBy") or None
        return cls(
            call_sid=sid,
            status=status,
            sequence_number=_int_or_none(params.get("SequenceNumber")),
            duration_seconds=_int_or_none(params.get("CallDuration")),
            answered_by=answered_by[:32] if answered_by else None,
            direction=direction,
        )


def lock_call(session: Session, call_sid: str) -> Call | None:
    """The call's row under ``SELECT … FOR UPDATE``, read afresh rather than from the session's
    cache, so the webhooks of one call (a voice turn, the final status callback) run one after
    the other, each on what the other committed. SQLite serialises writers anyway."""
    return session.scalar(
        select(Call)
        .where(Call.sid == call_sid)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def apply_call_status(
    session: Session, update: CallStatusUpdate, now: datetime
) -> tuple[Call, bool]:
    """Apply one status callback. Returns (call, whether anything changed)."""
    call = lock_call(session, update.call_sid)
    if call is None:
        call = Call(
            sid=update.call_sid,
            direction=update.direction,
            status=update.status,
            last_sequence_number=-1,
            created_at=now,
            # Nothing yet: the call's own webhooks keep its state, of its kind
            # (hotline.core.call_state).
            flow_state={},
        )
        session.add(call)
    else:
        if (
            update.sequence_number is not None
            and update.sequence_number <= call.last_sequence_number
        ):
            return call, False
        if CALL_STAGE.get(update.status, 0) < CALL_STAGE.get(call.status, 0):
            # Out of order without (or with a confusing) sequence number: keep the later stage,
            # but remember the sequence so an even older one is ignored too.
            if update.sequence_number is not None:
                call.last_sequence_number = update.sequence_number
            return call, False
        if call.status in FINAL_CALL_STATUSES and update.status != call.status:
            return call, False
    call.status = update.status
    if update.sequence_number is not None:
        call.last_sequence_number = update.sequence_number
    if update.duration_seconds is not None:
        call.duration_seconds = update.duration_seconds
    if update.answered_by and not call.answered_by:
        call.answered_by = update.answered_by
    ended_now = update.status in FINAL_CALL_STATUSES and call.ended_at is None
    if ended_now:
        call.ended_at = now
    session.flush()
    if ended_now:
        call_ended.send(call.sid, session=session, call=call, now=now)
    return call, True


def apply_recording_status(
    session: Session, params: dict[str, str], now: datetime
) -> Recording | None:
    sid = params.get("RecordingSid", "")
    status = params.get("RecordingStatus", "").strip().lower()
    url = params.get("RecordingUrl", "")
    if not sid or len(sid) > 64 or status not in RECORDING_STAGE or len(url) > 500:
        return None
    recording = session.scalar(select(Recording).where(Recording.sid == sid))
    call = None
    if params.get("CallSid"):
        call = session.scalar(select(Call).where(Call.sid == params["CallSid"]))
    if recording is None:
        recording = Recording(
            sid=sid,
            url=url,
            status=status,
            duration_seconds=_int_or_none(params.get("RecordingDuration")),
            call_id=None if call is None else call.id,
            # The tip gets it from the <Record> action (attach_recording: its timeline entry,
            # the update to endusers). A recording whose action never came stays without a tip
            # until the reconciliation with the provider attaches it (hotline.background.reconcile).
            tip_id=None,
            created_at=now,
            updated_at=now,
        )
        session.add(recording)
    elif RECORDING_STAGE.get(recording.status, 0) == 0:
        # Only an in-progress recording moves on; a final state is never replaced.
        recording.status = status
        recording.url = url or recording.url
        duration = _int_or_none(params.get("RecordingDuration"))
        if duration is not None:
            recording.duration_seconds = duration
        recording.updated_at = now
    session.flush()
    return recording
