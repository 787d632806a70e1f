"""Sending one outbox row: claim it, say "sending", make the one request, record what came of it.

Each step is its own transaction (see :mod:`dispatcher.outbox`), and the request to Twilio or the
SMTP server happens outside any transaction, so a slow provider never holds a database lock.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher import outbox
from dispatcher.levels import describe_type
from dispatcher.outbox import pull_next_forward
from dispatcher.plan_writer import describe_notes, raise_alert, update_notes
from hotline.core import timeline
from hotline.core.reporters import reporter_number, reporter_opted_out
from hotline.email import EmailError, EmailErrorKind, EmailMessage
from hotline.email.tip_email import TipEmailFacts, render_tip_email
from hotline.models import (
    AlertKind,
    Contact,
    District,
    MessageDirection,
    Notification,
    NotificationChannel,
    NotificationOutcome,
    NotificationPurpose,
    NotificationState,
    PhoneNumber,
    Reporter,
    School,
    Tip,
    TipEventKind,
    TipLevel,
    TipMessage,
)
from hotline.services import Hotline
from hotline.telephony.ports import CallRequest, SmsRequest, TelephonyError, TelephonyErrorKind
from hotline.wording import AlertTextKey, EmailKey, staff_text

log = logging.getLogger(__name__)
S = NotificationState

#: Test-only fault injection: seconds to wait between claiming a row and sending it, so a test
#: can kill a worker in exactly that gap. Refused outside simulated or mock installs.
PAUSE_AFTER_CLAIM_ENV = "HOTLINE_FAULT_PAUSE_AFTER_CLAIM"
RETRY_BACKOFF_MAX = timedelta(seconds=60)


@dataclass(frozen=True)
class Outbound:
    """Everything needed to send, read in one transaction before the request."""

    notification_id: int
    tip_id: int
    channel: NotificationChannel
    purpose: NotificationPurpose
    to_number: str | None
    to_email: str | None
    extension: str | None
    ring_timeout: int
    email: EmailMessage | None
    sms_body: str | None
    #: Every outbox row this one request carries (a bundled call), this row first.
    bundle: tuple[int, ...] = ()


def _pause_after_claim(services: Hotline) -> None:
    raw = os.environ.get(PAUSE_AFTER_CLAIM_ENV)
    if not raw:
        return
    if services.settings.uses_twilio and services.settings.twilio_api_base_url is None:
        log.error("%s ignored: never with real Twilio", PAUSE_AFTER_CLAIM_ENV)
        return
    time.sleep(float(raw))


#: The longest an alert call may last once answered (Twilio's TimeLimit).
CALL_TIME_LIMIT_SECONDS = 600
#: Calls to one number are spaced at least this far apart (carriers flag a caller id that
#: dials one number too often); a Critical call waits for it only if its deadline allows.
CALL_SPACING = timedelta(seconds=30)
SPACING_DEADLINE_MARGIN = timedelta(minutes=2)


def attempt_token(worker: str) -> str:
    """What a claim is held under: the worker's name (for people reading the table) and a part
    unique to this attempt, so a worker never mistakes an older claim of its own for this one."""
    return f"{worker[:51]}/{secrets.token_hex(6)}"


def send_notification(services: Hotline, notification_id: int, worker: str) -> str:
    """Send one due row (with, for a Critical call, every other due Critical call to the same
    number: one call for all). Returns what happened, for logs and tests: not-claimed,
    cancelled, postponed, sent, retry, failed, unknown."""
    db = services.db
    token = attempt_token(worker)
    with db.session() as session:
        if not outbox.claim(session, notification_id, token, services.clock.now()):
            return "not-claimed"
    _pause_after_claim(services)
    with db.session() as session:
        now = services.clock.now()
        outbound = _prepare(session, services, notification_id, (notification_id,))
        if outbound is None:
            _finish(
                session,
                notification_id,
                token,
                S.CLAIMED,
                S.FAILED,
                now,
                outcome=NotificationOutcome.NO_ADDRESS,
                error="the recipient has no usable number or address",
            )
            return "failed"
        if outbound.channel is NotificationChannel.VOICE:
            wait = _wait_before_calling(session, services, notification_id, now)
            if wait is not None:
                _postpone(session, notification_id, token, now, now + wait)
                return "postponed"
        if not outbox.start_sending(session, notification_id, token, now):
            return "cancelled"
        if outbound.channel is NotificationChannel.VOICE:
            bundle = (notification_id, *_bundle_siblings(session, notification_id, token, now))
            if len(bundle) > 1:
                outbound = replace(outbound, bundle=bundle)
    try:
        provider_sid = _send(services, outbound)
    except TelephonyError as exc:
        return _telephony_failed(services, outbound, token, exc)
    except EmailError as exc:
        return _email_failed(services, outbound, token, exc)
    except Exception as exc:  # a bug: the request may have gone out; never resend blindly
        log.exception("sending notification %s failed unexpectedly", notification_id)
        with db.session() as session:
            for row_id in outbound.bundle:
                _finish(
                    session,
                    row_id,
                    token,
                    S.SENDING,
                    S.UNKNOWN,
                    services.clock.now(),
                    outcome=NotificationOutcome.ERROR,
                    error=type(exc).__name__,
                )
        return "unknown"
    with db.session() as session:
        now = services.clock.now()
        for row_id in outbound.bundle:
            _record_sent(session, row_id, token, provider_sid, outbound.bundle, now)
    return "sent"


def _record_sent(
    session: Session,
    row_id: int,
    token: str,
    provider_sid: str,
    bundle: tuple[int, ...],
    now: datetime,
) -> None:
    """The provider took the request. A status callback may have come first: its outcome
    stays. A row the sweep already marked unknown (this worker's lease ran out mid-request)
    stays unknown, and keeps the sid so what the provider says of it can be matched."""
    sent = outbox.transition_one(
        session,
        row_id,
        S.SENDING,
        S.SENT,
        now=now,
        token=token,
        sent_at=now,
        provider_sid=provider_sid,
        outcome=func.coalesce(Notification.outcome, NotificationOutcome.ACCEPTED),
    )
    row = session.get_one(Notification, row_id)
    if not sent:
        if row.state is S.UNKNOWN and row.provider_sid is None:
            row.provider_sid = provider_sid
            row.updated_at = now
        log.warning("notification %s was sent after it was given up as %s", row_id, row.state)
    if row.phone_number_id is not None:
        phone = session.get_one(PhoneNumber, row.phone_number_id)
        if row.channel is NotificationChannel.VOICE:
            phone.last_called_at = now
        else:
            phone.last_texted_at = now
    timeline.record(
        session,
        session.get_one(Tip, row.tip_id),
        TipEventKind.NOTIFICATION_SENT,
        at=now,
        notification_id=row.id,
        channel=row.channel.value,
        purpose=row.purpose.value,
        contact_id=row.contact_id,
        leg_id=row.leg_id,
        provider_sid=provider_sid,
        bundled_with=[i for i in bundle if i != row.id] or None,
        state=None if sent else row.state.value,
    )


def _wait_before_calling(
    session: Session, services: Hotline, notification_id: int, now: datetime
) -> timedelta | None:
    """None to call now; else how long to wait: the number was just called, or the calls-per-
    second budget is used up for this second."""
    row = session.get_one(Notification, notification_id)
    critical = row.level is TipLevel.CRITICAL
    phone = session.get(PhoneNumber, row.phone_number_id) if row.phone_number_id else None
    if phone is not None and phone.last_called_at is not None:
        ready = phone.last_called_at + CALL_SPACING
        # A Critical call is never delayed past its deadline for the spacing.
        if ready > now and (not critical or ready <= row.deadline_at - SPACING_DEADLINE_MARGIN):
            return ready - now
    wait = services.call_limiter.acquire(critical)
    return timedelta(seconds=wait) if wait > 0 else None


def _postpone(
    session: Session, notification_id: int, token: str, now: datetime, due_at: datetime
) -> None:
    # The claim counted an attempt that was not made.
    outbox.transition_one(
        session,
        notification_id,
        S.CLAIMED,
        S.PLANNED,
        now=now,
        token=token,
        due_at=due_at,
        attempts=Notification.attempts - 1,
    )


def _bundle_siblings(
    session: Session, notification_id: int, token: str, now: datetime
) -> list[int]:
    """Other due Critical calls to the same number for other tips, taken into this call."""
    row = session.get_one(Notification, notification_id)
    if row.level is not TipLevel.CRITICAL or row.phone_number_id is None:
        return []
    candidates = session.scalars(
        select(Notification.id)
        .where(
            Notification.id != row.id,
            Notification.tip_id != row.tip_id,
            Notification.phone_number_id == row.phone_number_id,
            Notification.channel == NotificationChannel.VOICE,
            Notification.level == TipLevel.CRITICAL,
            Notification.state == NotificationState.PLANNED,
            Notification.due_at <= now,
        )
        .order_by(Notification.id)
        .limit(9)
    ).all()
    taken = []
    for sibling in candidates:
        if outbox.claim(session, sibling, token, now) and outbox.start_sending(
            session, sibling, token, now
        ):
            taken.append(sibling)
    return taken


def _prepare(
    session: Session, services: Hotline, notification_id: int, bundle: tuple[int, ...]
) -> Outbound | None:
    row = session.get_one(Notification, notification_id)
    tip = session.get_one(Tip, row.tip_id)
    if row.purpose is NotificationPurpose.REPORTER_REPLY:
        return _reply_to_reporter(session, services, row, tip)
    contact = session.get(Contact, row.contact_id) if row.contact_id else None
    phone = session.get(PhoneNumber, row.phone_number_id) if row.phone_number_id else None
    school = session.get(School, tip.school_id) if tip.school_id else None
    district = session.get(District, school.district_id) if school else None
    email = None
    sms_body = None
    if row.channel is NotificationChannel.EMAIL:
        if not row.email:
            return None
        email = render_tip_email(
            _facts(session, services, tip, school, district, row), (row.email,)
        )
    elif phone is None or (row.channel is NotificationChannel.VOICE and phone.bad_for_calls):
        return None
    elif row.channel is NotificationChannel.SMS:
        if phone.sms_opted_out or phone.bad_for_sms:
            return None
        sms_body = _sms_body(session, services, tip, school, row)
    ring = district.ring_timeout_seconds if district else 30
    if district is not None and district.hang_up_before_voicemail:
        # Most voicemail systems answer after about 20 seconds of ringing.
        ring = min(ring, 15)
    return Outbound(
        notification_id=row.id,
        tip_id=tip.id,
        channel=row.channel,
        purpose=row.purpose,
        to_number=None if phone is None else phone.e164,
        to_email=row.email,
        extension=contact.extension if contact else None,
        ring_timeout=ring,
        email=email,
        sms_body=sms_body,
        bundle=bundle,
    )


def _reply_to_reporter(
    session: Session, services: Hotline, row: Notification, tip: Tip
) -> Outbound | None:
    """A text to the reporter: their number is opened here, for this request only, and goes no
    further than the provider's API (never into a log, an error or the row)."""
    reporter = session.get(Reporter, tip.reporter_id) if tip.reporter_id else None
    message = session.get(TipMessage, row.message_id) if row.message_id else None
    if reporter is None or reporter.sms_opted_out or message is None:
        return None
    return Outbound(
        notification_id=row.id,
        tip_id=tip.id,
        channel=NotificationChannel.SMS,
        purpose=row.purpose,
        to_number=reporter_number(services.keyring, reporter),
        to_email=None,
        extension=None,
        ring_timeout=0,
        email=None,
        sms_body=message.body,
        bundle=(row.id,),
    )


def portal_url(services: Hotline, tip: Tip) -> str:
    return f"{services.settings.public_base_url}/portal/tips/{tip.report_number}"


def _facts(
    session: Session,
    services: Hotline,
    tip: Tip,
    school: School | None,
    district: District | None,
    row: Notification,
) -> TipEmailFacts:
    summary = None
    if district is not None and district.email_summary:
        first = session.scalar(
            select(TipMessage.body)
            .where(
                TipMessage.tip_id == tip.id, TipMessage.direction == MessageDirection.FROM_REPORTER
            )
            .order_by(TipMessage.id)
            .limit(1)
        )
        summary = first
    return TipEmailFacts(
        report_number=tip.report_number,
        level=row.level.value,
        tip_type=tip.type,
        type_description=describe_type(tip.type),
        category=tip.category,
        school_name=None if school is None else school.name,
        district_name="" if district is None else district.name,
        received_at=tip.received_at,
        district_timezone=district.timezone if district else "UTC",
        portal_url=portal_url(services, tip),
        summary=summary,
        purpose=row.purpose.value,
        update_note=describe_notes(update_notes(session, row)) or None
        if row.purpose is NotificationPurpose.UPDATE
        else None,
        escalation_note=staff_text(EmailKey.ESCALATION_NOTE)
        if row.purpose is NotificationPurpose.ESCALATION
        else None,
        hotline_number=services.settings.hotline_number,
    )


def _sms_body(
    session: Session, services: Hotline, tip: Tip, school: School | None, row: Notification
) -> str:
    where = school.name if school else staff_text(AlertTextKey.SCHOOL_UNKNOWN)
    url = portal_url(services, tip)
    if row.purpose is NotificationPurpose.UPDATE:
        items = len(update_notes(session, row))
        if items > 1:
            return staff_text(
                AlertTextKey.UPDATE_MANY,
                report_number=tip.report_number,
                school=where,
                count=str(items),
                portal_url=url,
            )
        return staff_text(
            AlertTextKey.UPDATE_ONE, report_number=tip.report_number, school=where, portal_url=url
        )
    return staff_text(
        AlertTextKey.ALERT,
        level=tip.level.value.upper(),
        report_number=tip.report_number,
        school=where,
        portal_url=url,
    )


def _send(services: Hotline, out: Outbound) -> str:
    base = services.settings.public_base_url
    query = urlencode([("n", row_id) for row_id in out.bundle or (out.notification_id,)])
    if out.channel is NotificationChannel.EMAIL:
        assert out.email is not None
        return services.email.send(out.email)
    assert out.to_number is not None
    if out.channel is NotificationChannel.SMS:
        assert out.sms_body is not None
        sent = services.telephony.send_sms(
            SmsRequest(
                to=out.to_number,
                from_=services.settings.hotline_number,
                body=out.sms_body,
                status_callback=f"{base}/twilio/alert/sms-status?{query}",
            )
        )
        return sent.sid
    placed = services.telephony.place_call(
        CallRequest(
            to=out.to_number,
            from_=services.settings.hotline_number,
            url=f"{base}/twilio/alert/voice?{query}",
            status_callback=f"{base}/twilio/alert/status?{query}",
            machine_detection="DetectMessageEnd",
            async_amd=True,
            async_amd_status_callback=f"{base}/twilio/alert/amd?{query}",
            ring_timeout=out.ring_timeout,
            time_limit=CALL_TIME_LIMIT_SECONDS,
            send_digits=out.extension,
        )
    )
    return placed.sid


#: The timeline entry of a row its claimant ends, by the state it ends in.
FINISHED_EVENTS = {
    S.FAILED: TipEventKind.NOTIFICATION_FAILED,
    S.UNKNOWN: TipEventKind.NOTIFICATION_UNKNOWN,
}


def _finish(
    session: Session,
    notification_id: int,
    token: str,
    frm: NotificationState,
    to: NotificationState,
    now: datetime,
    *,
    outcome: NotificationOutcome,
    error: str | None,
) -> bool:
    """The claimant ends the row (failed, unknown). False when it had changed meanwhile (a
    confirmation cancelled it, the sweep marked it unknown): nothing is written then."""
    kind = FINISHED_EVENTS[to]  # first: an end with no timeline entry fails before any write
    if not outbox.transition_one(
        session,
        notification_id,
        frm,
        to,
        now=now,
        token=token,
        outcome=outcome,
        last_error=None if error is None else error[:500],
    ):
        return False
    row = session.get_one(Notification, notification_id)
    timeline.record(
        session,
        session.get_one(Tip, row.tip_id),
        kind,
        at=now,
        notification_id=row.id,
        channel=row.channel.value,
        contact_id=row.contact_id,
        outcome=outcome,
        error=error,
    )
    return True


def _retry_later(
    session: Session, row: Notification, token: str, now: datetime, reason: str
) -> bool:
    backoff = min(timedelta(seconds=2 ** min(row.attempts, 6)), RETRY_BACKOFF_MAX)
    if not outbox.transition_one(
        session,
        row.id,
        S.SENDING,
        S.PLANNED,
        now=now,
        token=token,
        due_at=now + backoff,
        last_error=reason[:500],
    ):
        return False
    timeline.record(
        session,
        session.get_one(Tip, row.tip_id),
        TipEventKind.NOTIFICATION_RETRY,
        at=now,
        notification_id=row.id,
        channel=row.channel.value,
        retry_at=(now + backoff).isoformat(),
        reason=reason,
    )
    return True


def _telephony_failed(services: Hotline, out: Outbound, token: str, exc: TelephonyError) -> str:
    outcome = "failed"
    with services.db.session() as session:
        now = services.clock.now()
        for row_id in out.bundle or (out.notification_id,):
            outcome = _one_failed(session, row_id, token, exc, now)
    return outcome


def _one_failed(
    session: Session, row_id: int, token: str, exc: TelephonyError, now: datetime
) -> str:
    row = session.get_one(Notification, row_id)
    tip = session.get_one(Tip, row.tip_id)
    if exc.kind is TelephonyErrorKind.RETRYABLE:
        _retry_later(session, row, token, now, f"provider busy or unreachable ({exc.code})")
        return "retry"
    if exc.kind is TelephonyErrorKind.UNKNOWN_OUTCOME:
        if _finish(
            session,
            row.id,
            token,
            S.SENDING,
            S.UNKNOWN,
            now,
            outcome=NotificationOutcome.UNKNOWN,
            error=str(exc),
        ):
            raise_alert(
                session,
                tip=tip,
                kind=AlertKind.NOTIFICATION_UNKNOWN,
                message=f"Report {tip.report_number}: a {row.channel.value} to contact "
                f"{row.contact_id} may not have gone out (provider timeout or error).",
                key=f"unknown:{row.id}",
                now=now,
            )
        return "unknown"
    if not _finish(
        session,
        row.id,
        token,
        S.SENDING,
        S.FAILED,
        now,
        outcome=NotificationOutcome.FAILED,
        error=str(exc),
    ):
        return "failed"
    if row.purpose is NotificationPurpose.REPORTER_REPLY:
        if exc.code == 21610:
            reporter_opted_out(session, tip, now)
    elif exc.kind is TelephonyErrorKind.PERMANENT_NUMBER and row.phone_number_id:
        mark_bad_number(session, row, exc, now)
        if row.channel is NotificationChannel.VOICE:
            pull_next_forward(session, row, now)
    raise_alert(
        session,
        tip=tip,
        kind=AlertKind.NOTIFICATION_FAILED,
        message=f"Report {tip.report_number}: {_recipient(row)} failed "
        f"({exc.code or exc.kind.value}).",
        key=f"failed:{row.id}",
        now=now,
    )
    return "failed"


def _recipient(row: Notification) -> str:
    """Who a row was for, as the agents' feed says it (never a number)."""
    if row.purpose is NotificationPurpose.REPORTER_REPLY:
        return "a text to the reporter"
    return f"a {row.channel.value} to contact {row.contact_id}"


def mark_bad_number(
    session: Session, row: Notification, exc: TelephonyError, now: datetime
) -> None:
    phone = session.get_one(PhoneNumber, row.phone_number_id)
    if row.channel is NotificationChannel.VOICE:
        phone.bad_for_calls = True
    else:
        phone.bad_for_sms = True
        if exc.code == 21610:
            phone.sms_opted_out = True
            phone.sms_opted_out_at = now
    phone.bad_reason = f"twilio {exc.code}"
    phone.bad_since = now


def _email_failed(services: Hotline, out: Outbound, token: str, exc: EmailError) -> str:
    with services.db.session() as session:
        now = services.clock.now()
        row = session.get_one(Notification, out.notification_id)
        tip = session.get_one(Tip, row.tip_id)
        if exc.kind is EmailErrorKind.RETRYABLE:
            _retry_later(session, row, token, now, f"mail server unavailable ({exc.smtp_code})")
            return "retry"
        unknown = exc.kind is EmailErrorKind.UNKNOWN_OUTCOME
        state = S.UNKNOWN if unknown else S.FAILED
        outcome = NotificationOutcome.UNKNOWN if unknown else NotificationOutcome.FAILED
        if _finish(session, row.id, token, S.SENDING, state, now, outcome=outcome, error=str(exc)):
            raise_alert(
                session,
                tip=tip,
                kind=AlertKind.EMAIL_UNKNOWN if unknown else AlertKind.EMAIL_FAILED,
                message=f"Report {tip.report_number}: an e-mail to contact {row.contact_id} "
                f"{'may not have' if state is S.UNKNOWN else 'has not'} gone out.",
                key=f"email:{row.id}",
                now=now,
            )
        return state.value
