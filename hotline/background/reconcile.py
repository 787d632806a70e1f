"""Catching up with the provider after the hotline missed something.

Two periodic jobs (Celery beat and the embedded worker run both every RECONCILE_EVERY):

* :func:`reconcile_with_provider`. A webhook answered while the database was down stored nothing
  (:mod:`hotline.web.webhooks`), and Twilio does not redeliver a message answered with 200, nor a
  recording left on the apology or on the console's fallback TwiML. So the job lists, over a
  rolling LOOKBACK window, the provider's inbound texts, calls and recordings, and makes tips of
  any the database does not know: a text becomes an SMS tip with its words, a recording goes on
  its call's tip (a new voice tip when the call has none), a finished call with neither becomes
  an incomplete voice tip. The window needs no outage bookkeeping (an outage may be one the app
  could not even record) and every sid is unique in the database, so running it again, or
  racing a late webhook, never makes a second tip. Items younger than SETTLE are left for their
  webhooks. Agents get one alert per round that recovered anything.
* :func:`check_stale_inbound_calls`. A call whose final status callback never arrived (lost, or
  answered 503 during an outage) is asked about at the provider, and a final status is applied
  exactly as the callback would have (``apply_call_status`` → ``call_ended``), so a caller who
  hung up still leaves a completed or incomplete tip.

A reporter's number from the provider goes only to
:func:`hotline.core.reporters.find_or_create_reporter` (hashed and encrypted) and is never logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.core import timeline
from hotline.core.calls import FINAL_CALL_STATUSES, CallStatusUpdate, apply_call_status, lock_call
from hotline.core.tips import mark_incomplete
from hotline.models import (
    AlertKind,
    Call,
    CallDirection,
    InboundMessageSid,
    Recording,
    Tip,
    TipEventKind,
)
from hotline.services import Hotline
from hotline.telephony.ports import (
    ProviderCall,
    ProviderMessage,
    ProviderRecording,
    TelephonyError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How far back each round looks. An outage longer than this needs
#: ``flask --app hotline reconcile --hours N`` once the database is back.
LOOKBACK = timedelta(hours=6)
#: Younger items may still have their webhook on the way.
SETTLE = timedelta(minutes=2)
#: How often both jobs run (and so how often a stale call is asked about at most).
RECONCILE_EVERY_SECONDS = 300.0
#: An inbound call with no final status this long after it started is asked about.
STALE_INBOUND_CALL_AFTER = timedelta(minutes=15)

# Noting the texts the hotline handled --------------------------------------------------------


def message_known(session: Session, sid: str | None) -> bool:
    return (
        sid is not None
        and session.scalar(select(InboundMessageSid.id).where(InboundMessageSid.sid == sid))
        is not None
    )


def note_message(session: Session, sid: str | None, now: datetime, source: str) -> None:
    """Note that the text ``sid`` was handled, in the transaction that handled it. A concurrent
    note of the same sid fails the commit (unique), and the later one finds it known."""
    if sid is not None:
        session.add(InboundMessageSid(sid=sid, source=source, created_at=now))
        session.flush()


# The rolling reconciliation -------------------------------------------------------------------


@dataclass
class ReconcileReport:
    messages: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.messages) + len(self.recordings) + len(self.calls)


def reconcile_with_provider(services: Hotline, lookback: timedelta = LOOKBACK) -> ReconcileReport:
    """Make tips of whatever the provider holds from the last ``lookback`` that the database
    does not know. Each item is its own transaction; a listing that fails is tried next round."""
    now = services.clock.now()
    since, settled = now - lookback, now - SETTLE
    number = services.settings.hotline_number
    report = ReconcileReport()
    messages = _listed("messages", lambda: services.telephony.list_inbound_messages(number, since))
    for message in messages:
        if message.sent_at is None or message.sent_at <= settled:
            recover = functools.partial(_message, services=services, message=message, now=now)
            _each(services, report.messages, message.sid, recover)
    listed_calls = _listed("calls", lambda: services.telephony.list_inbound_calls(number, since))
    calls = {c.sid: c for c in listed_calls}
    recorded: set[str] = set()
    for rec in _listed("recordings", lambda: services.telephony.list_recordings(since)):
        if rec.call_sid is not None:
            recorded.add(rec.call_sid)
        if rec.status == "completed" and rec.duration_seconds != 0 and _settled(rec, settled):
            recover = functools.partial(
                _recording, rec=rec, provider_call=calls.get(rec.call_sid or ""), now=now
            )
            _each(services, report.recordings, rec.sid, recover)
    for call in calls.values():
        if call.sid not in recorded and call.status == "completed" and _started(call, settled):
            recover = functools.partial(_call_only, provider_call=call, now=now)
            _each(services, report.calls, call.sid, recover)
    if report.total:
        _alert(services, report, now)
    return report


def _listed(what: str, listing: Callable[[], list[T]]) -> list[T]:
    try:
        return listing()
    except TelephonyError as exc:
        log.warning("could not list the provider's %s (%s); next round", what, exc.kind.value)
        return []


def _each(
    services: Hotline, recovered: list[str], sid: str, recover: Callable[[Session], bool]
) -> None:
    try:
        with services.db.session() as session:
            if recover(session):
                recovered.append(sid)
    except IntegrityError:
        # A late webhook (or another round) kept it first: nothing to do.
        log.info("%s was kept meanwhile", sid)
    except Exception:
        log.exception("could not bring in %s from the provider; next round", sid)


def _settled(recording: ProviderRecording, settled: datetime) -> bool:
    return recording.created_at is None or recording.created_at <= settled


def _started(call: ProviderCall, settled: datetime) -> bool:
    return call.started_at is not None and call.started_at <= settled


def _message(
    session: Session, *, services: Hotline, message: ProviderMessage, now: datetime
) -> bool:
    """A text the database does not know: the words as a new SMS tip (never a command run
    hours late: a contact's "1" is shown to the agents, not taken as a confirmation). A keyword
    only records the number's state, as its webhook would have."""
    from sms import commands, service

    if message_known(session, message.sid):
        return False
    note_message(session, message.sid, now, source="provider")
    inbound = commands.inbound_from_params(
        {"From": message.from_, "Body": message.body, "MessageSid": message.sid}
    )
    keyring = services.keyring
    if isinstance(inbound.command, commands.KeywordCommand):
        service.handle_text(session, keyring, inbound, now)
        return False
    sender = service.identify(session, inbound.sender)
    service.keep_text(session, keyring, inbound, sender, now, join=False)
    tip = _new_tip(session)
    if tip is not None:
        _note_reconciled(session, tip, now, message.sid, sent_at=message.sent_at)
        if message.num_media:
            timeline.record(
                session,
                tip,
                TipEventKind.MESSAGE_MEDIA_AT_PROVIDER,
                at=now,
                count=message.num_media,
            )
    return True


def _new_tip(session: Session) -> Tip | None:
    """The tip just made in this item's own session (the only one it has loaded)."""
    tips = [o for o in session.identity_map.values() if isinstance(o, Tip)]
    return max(tips, key=lambda t: t.id) if tips else None


def _new_call(session: Session, sid: str, from_: str, now: datetime) -> Call:
    """A finished call the database never saw: its row, made as its first webhook would have
    (the caller as an anonymous reporter), and over."""
    from ivr_flows import runtime

    call = runtime.load_call(session, sid, from_, now)
    call.status, call.ended_at = "completed", now
    return call


def _recording(
    session: Session,
    *,
    rec: ProviderRecording,
    provider_call: ProviderCall | None,
    now: datetime,
) -> bool:
    from ivr_flows import runtime

    known = session.scalar(select(Recording).where(Recording.sid == rec.sid))
    if known is not None and known.tip_id is not None:
        return False
    if rec.call_sid is None:
        return False  # not a call's recording (a conference): not the hotline's
    existing = lock_call(session, rec.call_sid)
    if existing is None and provider_call is None:
        return False  # a call the listing did not show as inbound to the hotline
    if existing is not None and existing.direction is not CallDirection.INBOUND:
        return False
    call = existing or _new_call(
        session, rec.call_sid, "" if provider_call is None else provider_call.from_, now
    )
    tip = runtime.keep_recording(
        session,
        call,
        recording_sid=rec.sid,
        url=rec.url,
        duration_seconds=rec.duration_seconds,
        language="en",
        now=now,
    )
    _note_reconciled(session, tip, now, rec.sid, sent_at=rec.created_at)
    return True


def _call_only(session: Session, *, provider_call: ProviderCall, now: datetime) -> bool:
    """A finished call the database never saw, with no recording: an incomplete voice tip, so
    an agent knows someone called during the outage."""
    from ivr_flows import flow, runtime

    if lock_call(session, provider_call.sid) is not None:
        return False
    call = _new_call(session, provider_call.sid, provider_call.from_, now)
    runtime.create_call_tip(session, call, flow.VoiceState(), None, None, "en", now)
    tip = session.get_one(Tip, call.tip_id)
    mark_incomplete(session, tip, now, step="unknown")
    _note_reconciled(session, tip, now, provider_call.sid, sent_at=provider_call.started_at)
    return True


def _note_reconciled(
    session: Session, tip: Tip, now: datetime, sid: str, *, sent_at: datetime | None
) -> None:
    timeline.record(
        session,
        tip,
        TipEventKind.TIP_RECONCILED,
        at=now,
        note="reconciled from provider",
        sid=sid,
        provider_time=None if sent_at is None else sent_at.isoformat(),
    )


def _alert(services: Hotline, report: ReconcileReport, now: datetime) -> None:
    from dispatcher.plan_writer import raise_alert

    with services.db.session() as session:
        raise_alert(
            session,
            tip=None,
            kind=AlertKind.OUTAGE_RECOVERED,
            message=f"{report.total} messages/calls recovered after an outage "
            f"({len(report.messages)} texts, {len(report.recordings)} recordings, "
            f"{len(report.calls)} calls without a recording): their tips are in the feed.",
            key=f"outage_recovered:{now.isoformat()}",
            now=now,
        )


# Inbound calls whose final status never arrived ----------------------------------------------


def check_stale_inbound_calls(services: Hotline, limit: int = 50) -> list[str]:
    """Ask the provider about inbound calls still open STALE_INBOUND_CALL_AFTER after they
    started; apply a final status as its callback would have. Returns the sids ended."""
    now = services.clock.now()
    with services.db.sessionmaker() as session:
        sids = list(
            session.scalars(
                select(Call.sid)
                .where(
                    Call.direction == CallDirection.INBOUND,
                    Call.ended_at.is_(None),
                    Call.created_at < now - STALE_INBOUND_CALL_AFTER,
                )
                # Newest first: a call the provider cannot answer about never starves the rest.
                .order_by(Call.created_at.desc(), Call.id.desc())
                .limit(limit)
            )
        )
    ended = []
    for sid in sids:
        try:
            status = services.telephony.fetch_call_status(sid)
        except TelephonyError as exc:
            log.info("could not check inbound call %s (%s)", sid, exc.kind.value)
            continue
        if status not in FINAL_CALL_STATUSES:
            continue
        with services.db.session() as session:
            update = CallStatusUpdate(sid, status, sequence_number=None)
            _, changed = apply_call_status(session, update, now)
        if changed:
            log.info("inbound call %s ended (%s), learned from the provider", sid, status)
            ended.append(sid)
    return ended
