"""Where the pure voice menu meets the database: the flow's context, and its effects applied.

Everything here runs inside the webhook's session (committed with the delivery's receipt), so a
retried webhook can never create a second tip or a second timeline entry.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import replace
from datetime import datetime

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.confirm import confirm_notified, confirmable_notifications
from hotline.core import timeline
from hotline.core import tips as tip_service
from hotline.core.calls import call_ended, lock_call
from hotline.core.identity import IdentityKeyring
from hotline.core.reporters import find_or_create_reporter
from hotline.models import (
    Call,
    CallDirection,
    Channel,
    Reporter,
    School,
    Tip,
    TipEventKind,
    TipStatus,
)
from hotline.services import hotline
from hotline.wording import catalogue
from ivr_flows import flow
from ivr_flows.school_match import SchoolIndex, SchoolName, parse_spoken_code, speech_hints

log = logging.getLogger(__name__)


class DatabaseFlowContext:
    """Answers the menu's questions from the directory and the tips (read-only)."""

    def __init__(
        self, session: Session, keyring: IdentityKeyring, now: datetime, caller: str = ""
    ) -> None:
        self.session = session
        self.keyring = keyring
        self.now = now
        self.caller = caller
        self._index: SchoolIndex | None = None

    def may_confirm(self, report_number: str) -> bool:
        return bool(
            confirmable_notifications(self.session, number=self.caller, report_number=report_number)
        )

    def _schools(self) -> list[SchoolName]:
        rows = self.session.execute(
            select(School.id, School.name, School.code, School.aliases).where(
                School.active.is_(True)
            )
        ).all()
        return [
            SchoolName(id=r.id, name=r.name, code=r.code, aliases=tuple(r.aliases or ()))
            for r in rows
        ]

    def school_index(self) -> SchoolIndex:
        if self._index is None:
            self._index = SchoolIndex(self._schools())
        return self._index

    def hints(self) -> str:
        return speech_hints(self._schools())

    def school_by_code(self, code: str) -> flow.SchoolRef | None:
        row = self.session.execute(
            select(School.id, School.name).where(School.code == code, School.active.is_(True))
        ).first()
        return None if row is None else flow.SchoolRef(row.id, row.name)

    def match_school(self, speech: str, language: str) -> flow.SchoolRef | None:
        match = self.school_index().match(speech, language=language)
        if match.best is None or match.ambiguous:
            return None
        return flow.SchoolRef(match.best.id, match.best.name)

    def school_name(self, school_id: int) -> str:
        school = self.session.get(School, school_id)
        return "" if school is None else school.name

    def followup_tip(self, report_number: str, pin: str) -> int | None:
        tip = tip_service.find_tip_for_followup(
            self.session, self.keyring, report_number, pin, self.now
        )
        return None if tip is None else tip.id

    def messages_for_reporter(self, tip_id: int) -> list[flow.Message]:
        tip = self.session.get(Tip, tip_id)
        if tip is None:
            return []
        return [
            flow.Message(m.id, m.body) for m in tip_service.messages_for_reporter(self.session, tip)
        ]

    def dont_know(self, speech: str, language: str) -> bool:
        said = _plain(speech)
        if not said:
            return False
        return any(
            said == _plain(p) or said.startswith(_plain(p) + " ")
            for p in catalogue(language).dont_know
        )

    def spoken_code(self, speech: str) -> str | None:
        return parse_spoken_code(speech)


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


def load_call(session: Session, call_sid: str, from_number: str, now: datetime) -> Call:
    """The call's row, made on its first webhook (with the caller as an anonymous reporter).

    Locked for the rest of the turn, and read afresh (not the session's cached copy): two
    webhooks of one call (a ``<Record>`` action and the final status callback) run one after
    the other, each on what the other committed, instead of overwriting each other's state."""
    call = lock_call(session, call_sid)
    if call is not None:
        return call
    services = hotline()
    reporter = find_or_create_reporter(session, services.keyring, from_number, now)
    call = Call(
        sid=call_sid,
        direction=CallDirection.INBOUND,
        reporter_id=None if reporter is None else reporter.id,
        status="in-progress",
        created_at=now,
        flow_state={},
    )
    session.add(call)
    session.flush()
    return call


def apply_effects(
    session: Session,
    call: Call,
    state: flow.VoiceState,
    effects: tuple[flow.Effect, ...],
    now: datetime,
    caller: str = "",
) -> flow.VoiceState:
    """Carry out what the menu decided (``caller``: the call's ``From``). Returns the state with
    what the effects learned (the new tip's id, number and sealed PIN)."""
    for effect in effects:
        if isinstance(effect, flow.CreateTip | flow.CreateTipForMessage):
            if state.tip_id is not None and isinstance(effect, flow.CreateTip):
                continue  # defensive: one intake, one tip
            category = effect.category.value if isinstance(effect, flow.CreateTip) else None
            school_id = effect.school_id if isinstance(effect, flow.CreateTip) else None
            state = create_call_tip(session, call, state, category, school_id, effect.language, now)
        elif isinstance(effect, flow.AttachRecording):
            tip = _call_tip(session, call, state)
            if tip is None:
                log.error("recording on call without a tip; keeping it on the call only")
                continue
            tip_service.attach_recording(
                session,
                tip,
                recording_sid=effect.recording_sid,
                url=effect.recording_url,
                duration_seconds=effect.duration_seconds,
                call_id=call.id,
                now=now,
                followup=effect.followup,
            )
        elif isinstance(effect, flow.FollowupFailed):
            tip_service.record_followup_failure(session, effect.report_number, now, Channel.VOICE)
        elif isinstance(effect, flow.FollowupSucceeded):
            tip = session.get(Tip, effect.tip_id)
            if tip is not None:
                tip_service.record_followup_success(session, tip, now, Channel.VOICE)
                note_caller_verification(session, tip, state, now, reached_by="followup")
                call.tip_id = tip.id
        elif isinstance(effect, flow.MessagesHeard):
            tip = session.get(Tip, effect.tip_id)
            if tip is not None:
                tip_service.mark_messages_heard(
                    session, tip, effect.message_ids, now, Channel.VOICE
                )
        elif isinstance(effect, flow.ConfirmReport):
            confirm_by_callback(session, caller, effect.report_number, state, now)
        elif isinstance(effect, flow.SchoolNoted):
            tip = _call_tip(session, call, state)
            if tip is not None:
                timeline.record(
                    session,
                    tip,
                    TipEventKind.SCHOOL_UNCONFIRMED,
                    at=now,
                    school_id=effect.school_id,
                )
    return state


def confirm_by_callback(
    session: Session, caller: str, report_number: str, state: flow.VoiceState, now: datetime
) -> None:
    """A contact calling back keyed in a report number the menu found theirs to confirm."""
    rows = confirmable_notifications(session, number=caller, report_number=report_number)
    if not rows:  # asked in this same transaction a moment ago: defensive only
        log.warning("a voice confirmation found nothing to confirm")
        return
    confirm_notified(session, rows, via="voice-callback", now=now)
    tip = session.get_one(Tip, rows[0].tip_id)
    note_caller_verification(session, tip, state, now, reached_by="confirmation")


def note_caller_verification(
    session: Session, tip: Tip, state: flow.VoiceState, now: datetime, *, reached_by: str
) -> None:
    """What the network said of the caller ID of a call that made, followed up or confirmed
    ``tip`` (Twilio's ``StirVerstat``; None when it said nothing), for agents to judge."""
    timeline.record(
        session,
        tip,
        TipEventKind.CALL_CALLER_VERIFICATION,
        at=now,
        stir_verstat=state.caller_verification,
        reached_by=reached_by,
    )


def _call_tip(session: Session, call: Call, state: flow.VoiceState) -> Tip | None:
    tip_id = state.tip_id or call.tip_id
    return None if tip_id is None else session.get(Tip, tip_id)


def create_call_tip(
    session: Session,
    call: Call,
    state: flow.VoiceState,
    category: str | None,
    school_id: int | None,
    language: str,
    now: datetime,
) -> flow.VoiceState:
    """The call's tip (Standard for review when the category is unknown); returns ``state``
    with the tip's id, report number and the PIN sealed for the readback."""
    services = hotline()
    level, tip_type = tip_service.level_for_category(category)
    school = None if school_id is None else session.get(School, school_id)
    new = tip_service.create_tip(
        session,
        services.keyring,
        channel=Channel.VOICE,
        level=level,
        received_at=now,
        language=language,
        category=category,
        tip_type=tip_type,
        school=school,
        reporter=None if call.reporter_id is None else session.get(Reporter, call.reporter_id),
        status=TipStatus.INTAKE,
    )
    call.tip_id = new.tip.id
    note_caller_verification(session, new.tip, state, now, reached_by="tip.created")
    sealed = services.keyring.current.fernet.encrypt(new.pin.encode()).decode("ascii")
    return replace(state, tip_id=new.tip.id, report_number=new.tip.report_number, pin_sealed=sealed)


def keep_recording(
    session: Session,
    call: Call,
    *,
    recording_sid: str,
    url: str,
    duration_seconds: int | None,
    language: str,
    now: datetime,
    caller_verification: str | None = None,
) -> Tip:
    """A recording outside the menu (left after the apology, or found at the provider after an
    outage): on the call's tip, or on a new tip (Standard, for review) when it has none."""
    if call.tip_id is None:
        state = flow.VoiceState(caller_verification=caller_verification)
        create_call_tip(session, call, state, None, None, language, now)
    tip = session.get_one(Tip, call.tip_id)
    tip_service.attach_recording(
        session,
        tip,
        recording_sid=recording_sid,
        url=url,
        duration_seconds=duration_seconds,
        call_id=call.id,
        now=now,
    )
    session.flush()
    return tip


def open_pin(state: flow.VoiceState) -> str | None:
    if state.pin_sealed is None:
        return None
    try:
        return hotline().keyring.current.fernet.decrypt(state.pin_sealed.encode()).decode()
    except InvalidToken:  # a rotated key mid-call: the caller can still follow up by SMS later
        log.warning("could not open the PIN kept for the readback")
        return None


@call_ended.connect
def _caller_hung_up(_sender: object, *, session: Session, call: Call, now: datetime) -> None:
    """The call is over (learned from the status callback; Twilio calls no Gather action on a
    hang-up). Keep whatever the caller gave as an incomplete tip, and forget the PIN.

    A hang-up at a recording prompt keeps that step: Twilio posts the ``<Record>`` action
    after the hang-up, and it may arrive after this callback. That late turn then attaches the
    recording exactly as it would have before the hang-up (and a tip with a recording is open,
    see :func:`hotline.core.tips.attach_recording`)."""
    if call.direction is not CallDirection.INBOUND or not call.flow_state:
        return
    state = flow.VoiceState.from_json(call.flow_state)
    tip = _call_tip(session, call, state)
    if state.gathering_a_report:
        if tip is None:
            state = create_call_tip(
                session,
                call,
                state,
                None if state.category is None else state.category.value,
                state.school_id,
                state.language,
                now,
            )
            tip = _call_tip(session, call, state)
        if tip is not None:
            if state.school_candidate is not None and tip.school_id is None:
                timeline.record(
                    session,
                    tip,
                    TipEventKind.SCHOOL_UNCONFIRMED,
                    at=now,
                    school_id=state.school_candidate.id,
                )
            tip_service.mark_incomplete(session, tip, now, step=state.step.value)
    elif tip is not None and tip.status is TipStatus.INTAKE:
        tip_service.finish_intake(session, tip, now)
    step = state.step if state.step in RECORDING_STEPS else flow.Step.ENDED
    call.flow_state = replace(state, pin_sealed=None, step=step).to_json()


#: Prompts whose ``<Record>`` action Twilio still posts after the caller hung up.
RECORDING_STEPS = frozenset({flow.Step.RECORD, flow.Step.FOLLOWUP_RECORD, flow.Step.LEAVE_MESSAGE})
