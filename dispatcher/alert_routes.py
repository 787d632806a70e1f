"""The alert call's webhooks: what the callee hears, their keypress, the call's and the texts'
status callbacks. Every route is signed and idempotent (hotline.webhooks).

``n`` in each URL is the outbox row the call or text was placed for.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from dispatcher.confirm import confirm
from dispatcher.levels import describe_type
from hotline import timeline
from hotline.calls import FINAL_CALL_STATUSES, CallStatusUpdate, apply_call_status
from hotline.models import (
    Call,
    CallDirection,
    Contact,
    Notification,
    School,
    Tip,
)
from hotline.services import hotline
from hotline.webhooks import TwilioRequest, twilio_webhook

log = logging.getLogger(__name__)
bp = Blueprint("alert", __name__, url_prefix="/twilio/alert")

SAY = {"language": "en-US", "voice": "Polly.Joanna-Neural"}


def _twiml(response: VoiceResponse | str) -> Response:
    return Response(str(response), content_type="text/xml; charset=utf-8")


def _row(session: Session) -> Notification | None:
    raw = request.args.get("n", "")
    return session.get(Notification, int(raw)) if raw.isdigit() and len(raw) < 12 else None


def _spell(value: str) -> str:
    return ", ".join(value)


def alert_text(session: Session, row: Notification) -> str:
    tip = session.get_one(Tip, row.tip_id)
    school = session.get(School, tip.school_id) if tip.school_id else None
    where = school.name if school else "a school that is not known yet"
    kind = describe_type(tip.type) or (tip.category or "unspecified").replace("_", " ")
    return (
        f"This is the school safety tip line. There is a {row.level.value} safety report for "
        f"{where}. Report number {_spell(tip.report_number)}. Type: {kind}. "
        "Press 1 to confirm you received this report. Press star to hear it again."
    )


def _url(path: str, row: Notification, **extra: str) -> str:
    base = hotline().settings.public_base_url
    query = "&".join([f"n={row.id}", *(f"{k}={v}" for k, v in extra.items())])
    return f"{base}/twilio/alert/{path}?{query}"


def _note_call(session: Session, req: TwilioRequest, row: Notification) -> None:
    sid = req.get("CallSid")
    if not sid or len(sid) > 64:
        return
    if session.scalar(select(Call.id).where(Call.sid == sid)) is None:
        session.add(
            Call(
                sid=sid,
                direction=CallDirection.OUTBOUND,
                tip_id=row.tip_id,
                contact_id=row.contact_id,
                phone_number_id=row.phone_number_id,
                status="in-progress",
                created_at=hotline().clock.now(),
                flow_state={},
            )
        )


@bp.post("/voice")
@twilio_webhook("alert.voice")
def voice(req: TwilioRequest, session: Session) -> Response:
    response = VoiceResponse()
    row = _row(session)
    if row is None:
        response.say("This is the school safety tip line. Please call us back.", **SAY)
        response.hangup()
        return _twiml(response)
    _note_call(session, req, row)
    if request.args.get("again") == "2":
        response.say(
            "We did not get your confirmation. You can confirm later by calling or texting "
            "this number, or on the portal. Goodbye.",
            **SAY,
        )
        response.hangup()
        return _twiml(response)
    gather = response.gather(
        action=_url("key", row),
        method="POST",
        num_digits=1,
        timeout=8,
        finish_on_key="",
        action_on_empty_result=False,
    )
    gather.say(alert_text(session, row), **SAY)
    again = "2" if request.args.get("again") == "1" else "1"
    response.redirect(_url("voice", row, again=again), method="POST")
    return _twiml(response)


@bp.post("/key")
@twilio_webhook("alert.key")
def key(req: TwilioRequest, session: Session) -> Response:
    response = VoiceResponse()
    row = _row(session)
    if row is None:
        response.hangup()
        return _twiml(response)
    if req.get("Digits")[:1] != "1":
        response.redirect(_url("voice", row), method="POST")
        return _twiml(response)
    tip = session.get_one(Tip, row.tip_id)
    contact = session.get(Contact, row.contact_id) if row.contact_id else None
    result = confirm(
        session,
        tip=tip,
        contact=contact,
        via="voice",
        now=hotline().clock.now(),
        leg_kind=row.leg.kind if row.leg else None,
    )
    if result.ended_leg or result.confirmed_by_contact_id == (contact.id if contact else None):
        text = f"Thank you. Your confirmation of report {_spell(tip.report_number)} is recorded."
    else:
        text = (
            f"Thank you. Report {_spell(tip.report_number)} was already confirmed by "
            "someone else; your receipt is recorded too."
        )
    response.say(text + " Goodbye.", **SAY)
    response.hangup()
    return _twiml(response)


@bp.post("/status")
@twilio_webhook("alert.status")
def status(req: TwilioRequest, session: Session) -> Response:
    update = CallStatusUpdate.from_params({**req.params, "Direction": "outbound-api"})
    row = _row(session)
    if update is not None:
        now = hotline().clock.now()
        call, changed = apply_call_status(session, update, now)
        if row is not None:
            call.tip_id = call.tip_id or row.tip_id
            call.contact_id = call.contact_id or row.contact_id
            if changed and update.status in FINAL_CALL_STATUSES:
                row.outcome = update.status
                row.updated_at = now
                timeline.record(
                    session,
                    session.get_one(Tip, row.tip_id),
                    "notification.call_ended",
                    at=now,
                    notification_id=row.id,
                    contact_id=row.contact_id,
                    status=update.status,
                    answered_by=call.answered_by,
                    duration_seconds=call.duration_seconds,
                )
    return _twiml(VoiceResponse())


@bp.post("/amd")
@twilio_webhook("alert.amd")
def amd(req: TwilioRequest, session: Session) -> Response:
    call = session.scalar(select(Call).where(Call.sid == req.get("CallSid")))
    answered_by = req.get("AnsweredBy")[:32]
    if call is not None and answered_by and not call.answered_by:
        call.answered_by = answered_by
    return _twiml(VoiceResponse())


@bp.post("/sms-status")
@twilio_webhook("alert.sms_status")
def sms_status(req: TwilioRequest, session: Session) -> Response:
    row = _row(session)
    status = req.get("MessageStatus")[:32]
    final = {"delivered", "undelivered", "failed", "read"}
    if row is not None and status and row.outcome not in final:
        now = hotline().clock.now()
        row.outcome = status
        row.updated_at = now
        if status in ("failed", "undelivered"):
            timeline.record(
                session,
                session.get_one(Tip, row.tip_id),
                "notification.sms_failed",
                at=now,
                notification_id=row.id,
                error_code=req.get("ErrorCode")[:8],
            )
    return _twiml(VoiceResponse())
