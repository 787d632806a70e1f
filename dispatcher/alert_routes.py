"""The alert call's webhooks: what the callee hears, their keypress, answering-machine detection,
and the call's and the texts' status callbacks. Every route is signed and idempotent.

``n`` in each URL is the outbox row the call was placed for; a call that bundles several open
Critical tips for the same person carries one ``n`` per tip.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from dispatcher.alert_call_state import AlertCallState
from dispatcher.call_outcomes import call_finished, is_machine, outcome_of_call
from dispatcher.confirm import confirm
from dispatcher.levels import describe_type
from hotline.core import timeline
from hotline.core.calls import FINAL_CALL_STATUSES, CallStatusUpdate, apply_call_status
from hotline.core.confirming import VOICE_MENU_KEY
from hotline.core.redaction import redact_text
from hotline.core.reporters import reporter_opted_out
from hotline.db import run_after_commit
from hotline.models import (
    Call,
    CallDirection,
    Channel,
    Contact,
    District,
    LegState,
    MessageDirection,
    Notification,
    NotificationLeg,
    NotificationOutcome,
    NotificationPurpose,
    School,
    Tip,
    TipEventKind,
    TipMessage,
)
from hotline.services import hotline
from hotline.web.webhooks import TwilioRequest, is_database_failure, twilio_webhook
from hotline.wording import AlertCallKey, staff_catalogue, staff_text

log = logging.getLogger(__name__)
bp = Blueprint("alert", __name__, url_prefix="/twilio/alert")

#: The ``<Say>`` language and voice of alert calls: those of their wording's language.
SAY = staff_catalogue().say_options()
#: Job names (dispatcher.tasks runs them; kept here as strings so the routes do not import it).
VOICEMAIL_JOB = "dispatcher.voicemail"
TELL_COLLEAGUES_JOB = "dispatcher.tell_colleagues"


def _twiml(response: VoiceResponse | str) -> Response:
    return Response(str(response), content_type="text/xml; charset=utf-8")


def _fallback() -> Response:
    """What the callee hears if building the alert failed: never "an application error has
    occurred", always what to do next."""
    response = VoiceResponse()
    response.say(staff_text(AlertCallKey.FALLBACK), **SAY)
    response.hangup()
    return _twiml(response)


def _fallback_without_database(_req: TwilioRequest) -> Response:
    return _fallback()


def _confirmation_not_recorded(_req: TwilioRequest) -> Response:
    """The keypress could not be stored (the database is down): say so, and how else to
    confirm; the leg goes on, so nobody is left believing it was confirmed."""
    response = VoiceResponse()
    response.say(staff_text(AlertCallKey.NOT_RECORDED), **SAY)
    response.hangup()
    return _twiml(response)


def _never_fails(
    view: Callable[[TwilioRequest, Session], Response],
) -> Callable[[TwilioRequest, Session], Response]:
    @functools.wraps(view)
    def guarded(req: TwilioRequest, session: Session) -> Response:
        try:
            return view(req, session)
        except IntegrityError:
            # A concurrent webhook inserted the same row (a status callback racing this call's
            # first request): the webhook guard applies the delivery again on top of it, so the
            # callee hears the alert, not the fallback.
            raise
        except Exception as exc:
            if is_database_failure(exc):
                raise  # the guard answers with the route's own fallback, nothing stored
            log.exception(
                "alert call webhook %s failed; answering with the fallback", view.__name__
            )
            session.rollback()
            return _fallback()

    return guarded


def _rows(session: Session) -> list[Notification]:
    ids = [int(v) for v in request.args.getlist("n") if v.isdigit() and len(v) < 12][:20]
    rows = [session.get(Notification, i) for i in ids]
    return [r for r in rows if r is not None]


def spell(value: str) -> str:
    return ", ".join(value)


def _described(session: Session, row: Notification) -> tuple[Tip, str, str]:
    tip = session.get_one(Tip, row.tip_id)
    school = session.get(School, tip.school_id) if tip.school_id else None
    where = school.name if school else staff_text(AlertCallKey.SCHOOL_UNKNOWN)
    kind = describe_type(tip.type) or (
        tip.category.replace("_", " ")
        if tip.category
        else staff_text(AlertCallKey.TYPE_UNSPECIFIED)
    )
    return tip, where, kind


#: How a tip came in, in words (anything else is "the hotline").
CHANNEL_WORDS = {
    Channel.VOICE: AlertCallKey.CHANNEL_VOICE,
    Channel.SMS: AlertCallKey.CHANNEL_SMS,
    Channel.WEB: AlertCallKey.CHANNEL_WEB,
}
#: Longest summary of the reporter's words read on a call (when the district opted in).
SUMMARY_CHARACTERS = 160


def summary(session: Session, tip: Tip) -> str:
    """How and when the tip came in, and, only where the district opted in to summaries, the
    start of the reporter's own words: as little as is useful, the rest is behind a login."""
    school = session.get(School, tip.school_id) if tip.school_id else None
    district = session.get(District, school.district_id) if school else None
    zone = ZoneInfo(district.timezone) if district else ZoneInfo("UTC")
    local = tip.received_at.astimezone(zone)
    when = f"{local.strftime('%I:%M %p').lstrip('0')} {local.tzname()}"
    channel = staff_text(CHANNEL_WORDS.get(tip.channel, AlertCallKey.CHANNEL_OTHER))
    text = staff_text(AlertCallKey.CAME_IN, channel=channel, time=when)
    if district is not None and district.email_summary:
        words = session.scalar(
            select(TipMessage.body)
            .where(
                TipMessage.tip_id == tip.id, TipMessage.direction == MessageDirection.FROM_REPORTER
            )
            .order_by(TipMessage.id)
            .limit(1)
        )
        if words:
            short = redact_text(" ".join(words.split()))
            if len(short) > SUMMARY_CHARACTERS:
                short = short[:SUMMARY_CHARACTERS].rsplit(" ", 1)[0] + "..."
            text += " " + staff_text(AlertCallKey.REPORTER_WROTE, words=short)
    return text


def alert_text(session: Session, rows: Sequence[Notification]) -> str:
    if len(rows) == 1:
        tip, where, kind = _described(session, rows[0])
        return staff_text(
            AlertCallKey.ALERT_ONE,
            level=rows[0].level.value,
            school=where,
            report_number=spell(tip.report_number),
            kind=kind,
            summary=summary(session, tip),
        )
    parts = []
    for row in rows:
        tip, where, kind = _described(session, row)
        parts.append(
            staff_text(
                AlertCallKey.ALERT_MANY_ITEM,
                report_number=spell(tip.report_number),
                school=where,
                kind=kind,
            )
        )
    return staff_text(AlertCallKey.ALERT_MANY, count=str(len(rows)), reports="; ".join(parts))


def confirm_later() -> str:
    """How to confirm after the alert call, spoken: calling back confirms only with the report
    number (the caller ID proves nothing), and so does a text."""
    number = " ".join(hotline().settings.hotline_number.lstrip("+"))
    return staff_text(AlertCallKey.HOW_TO_CONFIRM_LATER, number=number, menu_key=VOICE_MENU_KEY)


def voicemail_text(session: Session, rows: Sequence[Notification]) -> str:
    reports = "; ".join(
        staff_text(AlertCallKey.VOICEMAIL_ITEM, report_number=spell(t.report_number), school=w)
        for t, w, _ in (_described(session, r) for r in rows)
    )
    return staff_text(AlertCallKey.VOICEMAIL, reports=reports, how_to_confirm=confirm_later())


def _url(path: str, rows: Sequence[Notification], **extra: str) -> str:
    base = hotline().settings.public_base_url
    query = "&".join([*(f"n={r.id}" for r in rows), *(f"{k}={v}" for k, v in extra.items())])
    return f"{base}/twilio/alert/{path}?{query}"


def _call(session: Session, req: TwilioRequest, rows: Sequence[Notification]) -> Call | None:
    sid = req.get("CallSid")
    if not sid or len(sid) > 64:
        return None
    call = session.scalar(select(Call).where(Call.sid == sid))
    if call is None:
        call = Call(
            sid=sid,
            direction=CallDirection.OUTBOUND,
            tip_id=rows[0].tip_id,
            contact_id=rows[0].contact_id,
            phone_number_id=rows[0].phone_number_id,
            status="in-progress",
            created_at=hotline().clock.now(),
            flow_state=AlertCallState(notification_ids=tuple(r.id for r in rows)).to_json(),
        )
        session.add(call)
        session.flush()
    else:
        _note_rows(call, rows)
    return call


def _note_rows(call: Call, rows: Sequence[Notification]) -> None:
    """The call's state names its outbox rows from the first webhook that carries them."""
    state = AlertCallState.from_json(call.flow_state)
    if not state.notification_ids:
        call.flow_state = replace(state, notification_ids=tuple(r.id for r in rows)).to_json()


def _open_rows(session: Session, rows: Sequence[Notification]) -> list[Notification]:
    """The rows whose leg still waits for a confirmation."""
    out = []
    for row in rows:
        leg = session.get(NotificationLeg, row.leg_id) if row.leg_id else None
        if leg is None or leg.state is LegState.OPEN:
            out.append(row)
    return out


@bp.post("/voice")
@twilio_webhook("alert.voice", on_database_error=_fallback_without_database)
@_never_fails
def voice(req: TwilioRequest, session: Session) -> Response:
    response = VoiceResponse()
    rows = _rows(session)
    if not rows:
        response.say(staff_text(AlertCallKey.CALL_US_BACK), **SAY)
        response.hangup()
        return _twiml(response)
    _call(session, req, rows)
    pending = _open_rows(session, rows)
    if not pending:
        # Answered after a colleague confirmed while this phone was ringing.
        reports = ", ".join(spell(session.get_one(Tip, r.tip_id).report_number) for r in rows)
        response.say(staff_text(AlertCallKey.ALREADY_CONFIRMED, reports=reports), **SAY)
        response.hangup()
        return _twiml(response)
    if request.args.get("again") == "2":
        response.say(
            staff_text(AlertCallKey.NOT_CONFIRMED_GOODBYE, how_to_confirm=confirm_later()), **SAY
        )
        response.hangup()
        return _twiml(response)
    gather = response.gather(
        action=_url("key", pending),
        method="POST",
        num_digits=1,
        timeout=8,
        finish_on_key="",
        action_on_empty_result=False,
    )
    gather.say(alert_text(session, pending), **SAY)
    again = "2" if request.args.get("again") == "1" else "1"
    response.redirect(_url("voice", pending, again=again), method="POST")
    return _twiml(response)


@bp.post("/key")
@twilio_webhook("alert.key", on_database_error=_confirmation_not_recorded)
@_never_fails
def key(req: TwilioRequest, session: Session) -> Response:
    response = VoiceResponse()
    rows = _rows(session)
    if not rows:
        response.hangup()
        return _twiml(response)
    if req.get("Digits")[:1] != "1":
        response.redirect(_url("voice", rows), method="POST")
        return _twiml(response)
    call = _call(session, req, rows)
    if call is not None:
        # A machine verdict that arrives after this keypress must not turn it into a voicemail.
        call.flow_state = replace(
            AlertCallState.from_json(call.flow_state), confirmed=True
        ).to_json()
    now = hotline().clock.now()
    ended_legs: list[tuple[int, int]] = []
    someone_else = []
    for row in rows:
        tip = session.get_one(Tip, row.tip_id)
        contact = session.get(Contact, row.contact_id) if row.contact_id else None
        leg = session.get(NotificationLeg, row.leg_id) if row.leg_id else None
        result = confirm(
            session,
            tip=tip,
            contact=contact,
            via="voice",
            now=now,
            leg_kind=leg.kind if leg else None,
        )
        if result.ended_leg and leg is not None:
            ended_legs.append((leg.id, row.id))
        elif not result.ended_leg and result.confirmed_by_contact_id != row.contact_id:
            someone_else.append(tip.report_number)
    jobs = hotline().jobs

    def tell_colleagues() -> None:
        for leg_id, row_id in ended_legs:
            jobs.enqueue(TELL_COLLEAGUES_JOB, leg_id, row_id)

    run_after_commit(session, tell_colleagues)
    reports = ", ".join(spell(session.get_one(Tip, r.tip_id).report_number) for r in rows)
    if someone_else and len(someone_else) == len(rows):
        text = staff_text(AlertCallKey.CONFIRMED_BY_SOMEONE_ELSE, reports=reports)
    else:
        text = staff_text(AlertCallKey.CONFIRMATION_RECORDED, reports=reports)
    response.say(text, **SAY)
    response.hangup()
    return _twiml(response)


@bp.post("/status")
@twilio_webhook("alert.status")
def status(req: TwilioRequest, session: Session) -> Response:
    update = CallStatusUpdate.from_params({**req.params, "Direction": "outbound-api"})
    rows = _rows(session)
    if update is None:
        return _twiml(VoiceResponse())
    now = hotline().clock.now()
    call, changed = apply_call_status(session, update, now)
    if rows:
        call.tip_id = call.tip_id or rows[0].tip_id
        call.contact_id = call.contact_id or rows[0].contact_id
        _note_rows(call, rows)
    if not (changed and update.status in FINAL_CALL_STATUSES):
        return _twiml(VoiceResponse())
    confirmed = AlertCallState.from_json(call.flow_state).confirmed
    ended = outcome_of_call(update.status)
    for row in rows:
        if row.outcome is not NotificationOutcome.VOICEMAIL:
            row.outcome = ended
        row.updated_at = now
        timeline.record(
            session,
            session.get_one(Tip, row.tip_id),
            TipEventKind.NOTIFICATION_CALL_ENDED,
            at=now,
            notification_id=row.id,
            contact_id=row.contact_id,
            status=update.status,
            answered_by=call.answered_by,
            duration_seconds=call.duration_seconds,
        )
        if not confirmed:
            call_finished(session, row, ended, call.answered_by, now)
    return _twiml(VoiceResponse())


@bp.post("/amd")
@twilio_webhook("alert.amd")
def amd(req: TwilioRequest, session: Session) -> Response:
    """Asynchronous answering-machine detection: the verdict arrives while the callee already
    hears the alert. A machine gets the voicemail (a job redirects the live call); a verdict
    that arrives after the person pressed 1 changes nothing."""
    rows = _rows(session)
    answered_by = req.get("AnsweredBy")[:32]
    call = _call(session, req, rows) if rows else None
    if call is None or not answered_by:
        return _twiml(VoiceResponse())
    if not call.answered_by:
        call.answered_by = answered_by
    if is_machine(answered_by):
        tip = session.get_one(Tip, rows[0].tip_id)
        if AlertCallState.from_json(call.flow_state).confirmed:
            timeline.record(
                session,
                tip,
                TipEventKind.NOTIFICATION_LATE_MACHINE_VERDICT_IGNORED,
                at=hotline().clock.now(),
                answered_by=answered_by,
            )
        else:
            jobs, call_id = hotline().jobs, call.id
            run_after_commit(session, lambda: jobs.enqueue(VOICEMAIL_JOB, call_id))
    return _twiml(VoiceResponse())


#: What Twilio's MessageStatus says of a text the hotline sent, kept as the row's outcome.
MESSAGE_STATUSES: dict[str, NotificationOutcome] = {
    outcome.value: outcome
    for outcome in (
        NotificationOutcome.QUEUED,
        NotificationOutcome.ACCEPTED,
        NotificationOutcome.SCHEDULED,
        NotificationOutcome.SENDING,
        NotificationOutcome.SENT,
        NotificationOutcome.DELIVERED,
        NotificationOutcome.UNDELIVERED,
        NotificationOutcome.FAILED,
        NotificationOutcome.READ,
        NotificationOutcome.CANCELED,
        NotificationOutcome.PARTIALLY_DELIVERED,
    )
}
#: A text's last word: a later (out of order) status callback does not replace it.
#: How far along a text is: a status callback only ever moves a row forward (Twilio's text
#: callbacks carry no sequence number and may arrive out of order; a late "sent" must not undo
#: "delivered").
MESSAGE_PROGRESS: dict[NotificationOutcome, int] = {
    NotificationOutcome.ACCEPTED: 1,
    NotificationOutcome.SCHEDULED: 1,
    NotificationOutcome.QUEUED: 1,
    NotificationOutcome.SENDING: 2,
    NotificationOutcome.SENT: 3,
    NotificationOutcome.DELIVERED: 4,
    NotificationOutcome.UNDELIVERED: 4,
    NotificationOutcome.FAILED: 4,
    NotificationOutcome.READ: 4,
    NotificationOutcome.CANCELED: 4,
    NotificationOutcome.PARTIALLY_DELIVERED: 4,
}
#: Twilio's error for a text to a number that replied STOP.
UNSUBSCRIBED_RECIPIENT = "21610"


def moves_forward(current: NotificationOutcome | None, status: NotificationOutcome) -> bool:
    return MESSAGE_PROGRESS.get(status, 0) > MESSAGE_PROGRESS.get(current, 0) if current else True


@bp.post("/sms-status")
@twilio_webhook("alert.sms_status")
def sms_status(req: TwilioRequest, session: Session) -> Response:
    rows = _rows(session)
    raw = req.get("MessageStatus")
    status = MESSAGE_STATUSES.get(raw)
    if raw and status is None:
        log.warning("text status %r is not one Twilio documents; ignored", raw[:32])
    for row in rows:
        if status is None or not moves_forward(row.outcome, status):
            continue
        now = hotline().clock.now()
        row.outcome = status
        row.updated_at = now
        if status in (NotificationOutcome.FAILED, NotificationOutcome.UNDELIVERED):
            tip = session.get_one(Tip, row.tip_id)
            error_code = req.get("ErrorCode")[:8]
            timeline.record(
                session,
                tip,
                TipEventKind.NOTIFICATION_SMS_FAILED,
                at=now,
                notification_id=row.id,
                error_code=error_code,
            )
            if row.purpose is NotificationPurpose.REPORTER_REPLY and (
                error_code == UNSUBSCRIBED_RECIPIENT
            ):
                reporter_opted_out(session, tip, now)
    return _twiml(VoiceResponse())
