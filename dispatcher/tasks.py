"""The dispatcher's jobs, thin: they take ids and call services. Shared by the Celery tasks, the
embedded worker and the tests."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from twilio.twiml.voice_response import VoiceResponse

from dispatcher import outbox
from dispatcher.alert_call_state import AlertCallState
from dispatcher.call_outcomes import call_finished, outcome_of_call
from dispatcher.plan_writer import plan_tip, raise_alert, record_plan_failure
from dispatcher.sender import send_notification
from dispatcher.watchdog import alert_past_due, open_critical_legs, watch_leg
from hotline.background import heartbeat
from hotline.core import timeline
from hotline.core.calls import FINAL_CALL_STATUSES
from hotline.models import (
    AlertKind,
    Call,
    Notification,
    NotificationChannel,
    NotificationLeg,
    NotificationOutcome,
    NotificationState,
    Tip,
    TipEventKind,
)
from hotline.services import Hotline
from hotline.telephony.ports import CallUpdate, TelephonyError
from hotline.wording import AlertCallKey, staff_catalogue, staff_text

log = logging.getLogger(__name__)

PLAN_TIP = "dispatcher.plan_tip"
SEND = "dispatcher.send"
VOICEMAIL = "dispatcher.voicemail"
TELL_COLLEAGUES = "dispatcher.tell_colleagues"
#: Fetch a text's media item, keep it, delete it at the provider (:mod:`sms.media`).
FETCH_MEDIA = "sms.fetch_media"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def plan_tip_job(services: Hotline, tip_id: int) -> None:
    due = plan_or_fall_back(services, tip_id, mark_enqueued=True)
    for notification_id in due:
        services.jobs.enqueue(SEND, notification_id)


def plan_or_fall_back(services: Hotline, tip_id: int, *, mark_enqueued: bool = False) -> list[int]:
    """Plan one tip in its own transaction. When planning raises, nothing of it is kept; the
    failure is recorded, the duty line gets the tip, and the sweep tries again later. Returns
    the rows due now; ``mark_enqueued`` when the caller hands them to the queue itself (the
    sweep then leaves them alone a while)."""
    now = services.clock.now()
    try:
        with services.db.session() as session:
            result = plan_tip(session, tip_id, now)
            due = list(result.due_now) if result is not None else []
            if mark_enqueued:
                outbox.mark_enqueued(session, due, now)
        return due
    except Exception as exc:
        log.exception("planning tip %s failed; the duty line gets it", tip_id)
        error = f"{type(exc).__name__}: {exc}"
    with services.db.session() as session:
        due = record_plan_failure(session, tip_id, now, error)
        if mark_enqueued:
            outbox.mark_enqueued(session, due, now)
    return due


def send_job(services: Hotline, notification_id: int) -> str:
    return send_notification(services, notification_id, worker_name())


def voicemail_job(services: Hotline, call_id: int) -> None:
    """Redirect a live alert call that a machine answered: leave the voicemail after the beep."""
    from dispatcher.alert_routes import SAY, voicemail_text

    with services.db.session() as session:
        call = session.get(Call, call_id)
        if call is None or call.ended_at is not None:
            return
        state = AlertCallState.from_json(call.flow_state)
        if state.confirmed:
            return
        rows = [
            r
            for r in (session.get(Notification, i) for i in state.notification_ids)
            if r is not None
        ]
        if not rows:
            return
        twiml = VoiceResponse()
        twiml.say(voicemail_text(session, rows), **SAY)
        twiml.hangup()
        call_sid, row_ids = call.sid, [r.id for r in rows]
    try:
        services.telephony.update_call(call_sid, CallUpdate(twiml=str(twiml)))
    except TelephonyError as exc:
        log.warning("could not leave the voicemail on call %s (%s)", call_sid, exc.kind.value)
        return
    with services.db.session() as session:
        now = services.clock.now()
        for row_id in row_ids:
            row = session.get_one(Notification, row_id)
            row.outcome = NotificationOutcome.VOICEMAIL
            row.updated_at = now
            timeline.record(
                session,
                session.get_one(Tip, row.tip_id),
                TipEventKind.NOTIFICATION_VOICEMAIL_LEFT,
                at=now,
                notification_id=row.id,
                contact_id=row.contact_id,
            )


def tell_colleagues_job(services: Hotline, leg_id: int, confirmed_row_id: int) -> None:
    """Someone on the leg confirmed: colleagues on a live alert call of the same leg hear so
    and are let go. Those still ringing hear it when they answer (the alert route checks)."""
    with services.db.session() as session:
        live = session.execute(
            select(Call.sid, Notification.id, Notification.tip_id)
            .join(Notification, Notification.provider_sid == Call.sid)
            .where(
                Notification.leg_id == leg_id,
                Notification.id != confirmed_row_id,
                Notification.channel == NotificationChannel.VOICE,
                Notification.state == NotificationState.SENT,
                Call.ended_at.is_(None),
                Call.status == "in-progress",
            )
        ).all()
    for call_sid, row_id, tip_id in live:
        twiml = VoiceResponse()
        twiml.say(
            staff_text(AlertCallKey.COLLEAGUE_JUST_CONFIRMED), **staff_catalogue().say_options()
        )
        twiml.hangup()
        try:
            services.telephony.update_call(call_sid, CallUpdate(twiml=str(twiml)))
        except TelephonyError as exc:
            log.info("could not reach colleague's call %s (%s)", call_sid, exc.kind.value)
            continue
        with services.db.session() as session:
            timeline.record(
                session,
                session.get_one(Tip, tip_id),
                TipEventKind.NOTIFICATION_COLLEAGUE_TOLD,
                at=services.clock.now(),
                notification_id=row_id,
            )


def fetch_media_job(services: Hotline, media_id: int) -> None:
    """A text's picture: fetched, checked, kept, deleted at the provider."""
    from sms import media

    media.fetch_and_delete(services, media_id, worker_name())


def run_job(services: Hotline, name: str, args: tuple[int, ...]) -> None:
    if name == PLAN_TIP:
        plan_tip_job(services, *args)
    elif name == SEND:
        send_job(services, *args)
    elif name == VOICEMAIL:
        voicemail_job(services, *args)
    elif name == TELL_COLLEAGUES:
        tell_colleagues_job(services, *args)
    elif name == FETCH_MEDIA:
        fetch_media_job(services, *args)
    else:
        log.error("unknown job %s", name)


@dataclass
class SweepReport:
    planned_tips: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)
    sent_inline: list[int] = field(default_factory=list)
    checked: list[int] = field(default_factory=list)
    #: Media items of texts handed to the queue, or fetched here when it refused them.
    media_enqueued: list[int] = field(default_factory=list)
    media_inline: list[int] = field(default_factory=list)
    #: Parts of the sweep that raised (the others ran all the same).
    failed: list[str] = field(default_factory=list)


def sweep(services: Hotline) -> SweepReport:
    """Re-drive everything the database says is due: tips never planned (a lost enqueue, a
    failed plan whose retry is due), claims whose worker vanished, due rows, calls whose final
    status never came, media of texts whose fetch (or deletion at the provider) is due. Each
    part runs whatever another part did: one broken tip or one failing query never stops the
    others. The sweep heartbeat says when a sweep last ran whole."""
    report = SweepReport()
    now = services.clock.now()
    parts: list[tuple[str, Callable[[], None]]] = [
        ("plan", lambda: _plan_unplanned(services, report, now)),
        ("release", lambda: _release_expired(services, report, now)),
        ("send", lambda: _hand_out_due(services, report, now)),
        ("stale-calls", lambda: report.checked.extend(check_stale_calls(services))),
        ("media", lambda: _hand_out_media(services, report, now)),
    ]
    for name, part in parts:
        try:
            part()
        except Exception:
            log.exception("sweep: %s failed; the rest of the sweep goes on", name)
            report.failed.append(name)
    try:
        with services.db.session() as session:
            if report.failed:
                heartbeat.record_failure(
                    session, heartbeat.SWEEP, f"failed: {', '.join(report.failed)}"
                )
            else:
                heartbeat.record_heartbeat(session, heartbeat.SWEEP, services.clock.now())
    except Exception:
        log.exception("sweep: could not write its heartbeat")
    return report


def _plan_unplanned(services: Hotline, report: SweepReport, now: datetime) -> None:
    with services.db.session() as session:
        unplanned = list(
            session.scalars(
                select(Tip.id)
                .where(
                    Tip.plan_version == 0,
                    Tip.plan_retry_at.is_(None) | (Tip.plan_retry_at <= now),
                )
                .order_by(Tip.id)
                .limit(50)
            )
        )
    for tip_id in unplanned:
        # The due rows are handed out by the next part of the sweep. Even the fallback failing
        # for one tip (the database refusing its rows) must not keep the others unplanned.
        try:
            plan_or_fall_back(services, tip_id)
        except Exception as exc:
            log.exception(
                "sweep: tip %s could be neither planned nor given to the duty line", tip_id
            )
            report.failed.append(f"plan:{tip_id}")
            _alert_alone(
                services,
                tip_id,
                kind=AlertKind.PLAN_FAILED,
                message="its notifications could be neither planned nor given to the duty line "
                f"({type(exc).__name__}: {exc}). Handle this report by hand.",
                key=f"unplannable:{tip_id}",
                now=now,
            )
            continue
        report.planned_tips.append(tip_id)


def _release_expired(services: Hotline, report: SweepReport, now: datetime) -> None:
    with services.db.session() as session:
        report.released, report.unknown = outbox.release_expired_claims(session, now)
        for notification_id in report.unknown:
            row = session.get_one(Notification, notification_id)
            tip = session.get_one(Tip, row.tip_id)
            raise_alert(
                session,
                tip=tip,
                kind=AlertKind.NOTIFICATION_UNKNOWN,
                message=f"Report {tip.report_number}: a worker stopped while sending a "
                f"{row.channel.value} to contact {row.contact_id}; it may not have "
                "gone out.",
                key=f"unknown:{row.id}",
                now=now,
            )


def _hand_out_due(services: Hotline, report: SweepReport, now: datetime) -> None:
    with services.db.session() as session:
        due = outbox.due_ids(session, now)
        outbox.mark_enqueued(session, due, now)
    for notification_id in due:
        if services.jobs.enqueue_now(SEND, notification_id):
            report.enqueued.append(notification_id)
        else:
            send_job(services, notification_id)
            report.sent_inline.append(notification_id)


#: Media items the sweep fetches itself in one round when the queue refuses them (Redis down):
#: a few, so downloads never hold up the next round's calls.
MEDIA_INLINE_PER_SWEEP = 2


def _hand_out_media(services: Hotline, report: SweepReport, now: datetime) -> None:
    """Here rather than in the reconciliation: the retries are seconds to minutes apart, and the
    sweep is what re-drives due rows every 2 seconds (the reconciliation runs every 5 minutes and
    is about what the provider lists)."""
    from sms import media

    with services.db.session() as session:
        due = media.due_media(session, now)
        media.mark_enqueued(session, due, now)
    for media_id in due:
        if services.jobs.enqueue_now(FETCH_MEDIA, media_id):
            report.media_enqueued.append(media_id)
        elif len(report.media_inline) < MEDIA_INLINE_PER_SWEEP:
            fetch_media_job(services, media_id)
            report.media_inline.append(media_id)
        # Otherwise it is due again once REENQUEUE_AFTER has passed.


#: An alert call with no final status this long after it was placed is asked about at Twilio
#: (a status callback can be lost), at most every RECHECK_EVERY.
STALE_CALL_AFTER = timedelta(minutes=15)
RECHECK_EVERY = timedelta(minutes=5)


def check_stale_calls(services: Hotline, limit: int = 10) -> list[int]:
    """Ask the provider about alert calls whose final status never arrived."""
    now = services.clock.now()
    with services.db.session() as session:
        rows = session.execute(
            select(Notification.id, Notification.provider_sid)
            .where(
                Notification.channel == NotificationChannel.VOICE,
                Notification.state == NotificationState.SENT,
                Notification.outcome == NotificationOutcome.ACCEPTED,
                Notification.provider_sid.is_not(None),
                Notification.sent_at < now - STALE_CALL_AFTER,
                Notification.updated_at < now - RECHECK_EVERY,
            )
            .limit(limit)
        ).all()
        for row_id, _ in rows:
            session.get_one(Notification, row_id).updated_at = now
    checked = []
    for row_id, call_sid in rows:
        if call_sid is None:
            continue
        try:
            status = services.telephony.fetch_call_status(call_sid)
        except TelephonyError as exc:
            log.info("could not check call %s (%s)", call_sid, exc.kind.value)
            continue
        if status not in FINAL_CALL_STATUSES:
            continue
        with services.db.session() as session:
            row = session.get_one(Notification, row_id)
            if row.outcome is not NotificationOutcome.ACCEPTED:
                continue  # the callback arrived meanwhile
            ended = outcome_of_call(status)
            row.outcome = ended
            row.updated_at = now
            call = session.scalar(select(Call).where(Call.sid == call_sid))
            timeline.record(
                session,
                session.get_one(Tip, row.tip_id),
                TipEventKind.NOTIFICATION_STATUS_CHECKED,
                at=now,
                notification_id=row.id,
                status=status,
            )
            if call is None or not AlertCallState.from_json(call.flow_state).confirmed:
                call_finished(session, row, ended, call.answered_by if call else None, now)
        checked.append(row_id)
    return checked


def watchdog(services: Hotline) -> dict[str, int]:
    """Each open Critical leg in its own transaction (one leg whose directory or tip breaks the
    watchdog never stops the others), then the past-due alerts. The watchdog heartbeat is
    written only by a run that went through whole."""
    now = services.clock.now()
    every = services.settings.escalation_email_every
    counts = {"unconfirmed": 0, "past_due": 0, "restarted": 0, "exhausted": 0, "failed": 0}
    with services.db.session() as session:
        legs = open_critical_legs(session)
    for leg_id in legs:
        try:
            with services.db.session() as session:
                watch_leg(session, leg_id, now, counts, escalation_email_every=every)
        except Exception as exc:
            log.exception("watchdog: leg %s failed; the other legs go on", leg_id)
            counts["failed"] += 1
            _alert_alone(
                services,
                _tip_of_leg(services, leg_id),
                kind=AlertKind.WATCHDOG_FAILED,
                message=f"a leg cannot be chased automatically ({type(exc).__name__}: {exc}). "
                "Call its people by hand.",
                key=f"watchdog-failed:{leg_id}",
                now=now,
            )
    with services.db.session() as session:
        alert_past_due(session, now, counts)
        if counts["failed"]:
            heartbeat.record_failure(
                session, heartbeat.WATCHDOG, f"failed on {counts['failed']} leg(s)"
            )
        else:
            heartbeat.record_heartbeat(session, heartbeat.WATCHDOG, services.clock.now())
    return counts


def _alert_alone(
    services: Hotline,
    tip_id: int | None,
    *,
    kind: AlertKind,
    message: str,
    key: str,
    now: datetime,
) -> None:
    """Tell the agents, in a transaction of its own, about a tip the background could not
    handle: once, and without letting a second failure stop the rest of the run."""
    if tip_id is None:
        return
    try:
        with services.db.session() as session:
            tip = session.get_one(Tip, tip_id)
            raise_alert(
                session,
                tip=tip,
                kind=kind,
                message=f"Report {tip.report_number}: {message[:400]}",
                key=key,
                now=now,
            )
    except Exception:
        log.exception("could not even raise the %s alert for tip %s", kind, tip_id)


def _tip_of_leg(services: Hotline, leg_id: int) -> int | None:
    try:
        with services.db.sessionmaker() as session:
            return session.get_one(NotificationLeg, leg_id).tip_id
    except Exception:
        log.exception("watchdog: leg %s unreadable", leg_id)
        return None
