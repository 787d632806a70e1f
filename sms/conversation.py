"""The anonymous conversation about a tip, as the console and the portal will use it: the thread
(messages both ways with their delivery state, the timeline), a reply to the reporter, marking
the reporter's messages read.

A reply goes from the hotline number to the number the reporter texted from, through the outbox
(a ``Notification`` row, purpose ``reporter_reply``): it survives a restart, is claimed by one
worker and sent at most once, and its status callbacks (queued, sent, delivered, undelivered,
failed) move it forward only. The reporter is a pseudonym everywhere people look
(:func:`pseudonym`); their number is opened only by the sender, for the provider's API.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dispatcher.outbox import planned_row
from dispatcher.tasks import SEND
from hotline.core import timeline
from hotline.db import run_after_commit
from hotline.models import (
    ActorType,
    MessageDirection,
    MessageMedia,
    Notification,
    NotificationChannel,
    NotificationOutcome,
    NotificationPurpose,
    Reporter,
    Tip,
    TipEvent,
    TipEventKind,
    TipMessage,
)

#: A reply not handed to the provider within this long is on the agents' feed (the watchdog).
REPLY_DEADLINE = timedelta(minutes=5)
#: The longest reply: ten segments of a Unicode text. Longer would be split by the provider into
#: texts that may arrive out of order.
MAX_REPLY_CHARACTERS = 670

_PSEUDONYM_LETTERS = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


class ReplyRefused(ValueError):
    """The reply cannot go: no reporter number to answer, the reporter opted out, or the text
    is empty or too long. The message says which, for the agent."""


@dataclass(frozen=True)
class ThreadMessage:
    id: int
    direction: MessageDirection
    body: str
    at: datetime
    #: "reporter", or who wrote to the reporter ("agent:7").
    author: str
    #: A reply's delivery: planned, sent, queued, delivered, undelivered, failed... (None for
    #: the reporter's own messages).
    delivery: str | None
    segments: int
    read_at: datetime | None


@dataclass(frozen=True)
class ThreadMedia:
    """A picture, video or voice note the reporter texted (read through
    :func:`sms.media.open_media`, never from the provider)."""

    id: int
    #: The message it came with; None for a picture sent without words.
    message_id: int | None
    #: pending, fetching, fetched, refused, failed.
    state: str
    content_type: str | None
    at: datetime


@dataclass(frozen=True)
class Thread:
    tip_id: int
    report_number: str
    reporter: str | None
    #: Texts can no longer reach the reporter (STOP, or the provider's 21610).
    reporter_opted_out: bool
    messages: tuple[ThreadMessage, ...]
    media: tuple[ThreadMedia, ...]
    timeline: tuple[tuple[datetime, str], ...]


def pseudonym(reporter: Reporter) -> str:
    """ "Reporter R-7Q2K": stable for one reporter, derived from the keyed hash (which is already
    safe to show), so it names nobody."""
    digest = hashlib.sha256(reporter.number_hash.encode("ascii")).digest()
    code = "".join(_PSEUDONYM_LETTERS[b % len(_PSEUDONYM_LETTERS)] for b in digest[:4])
    return f"Reporter R-{code}"


def segments(body: str) -> int:
    """How many texts ``body`` is sent as: GSM-7 texts carry 160 characters (153 each when
    split), anything else (emoji, accents outside GSM-7, non-Latin scripts) 70 (67 each)."""
    gsm = all(ch in _GSM7 for ch in body)
    single, part = (160, 153) if gsm else (70, 67)
    length = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in body) if gsm else len(body)
    if length <= single:
        return 1
    return -(-length // part)


_GSM7_EXTENDED = frozenset("^{}\\[~]|€")
_GSM7 = (
    frozenset(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    )
    | _GSM7_EXTENDED
)


def thread(session: Session, tip_id: int) -> Thread:
    """The tip's conversation and timeline, oldest first."""
    tip = session.get_one(Tip, tip_id)
    reporter = session.get(Reporter, tip.reporter_id) if tip.reporter_id else None
    rows = session.execute(
        select(TipMessage, Notification.state, Notification.outcome)
        .outerjoin(
            Notification,
            (Notification.message_id == TipMessage.id)
            & (Notification.purpose == NotificationPurpose.REPORTER_REPLY),
        )
        .where(TipMessage.tip_id == tip_id)
        .order_by(TipMessage.created_at, TipMessage.id)
    ).all()
    messages = tuple(
        ThreadMessage(
            id=m.id,
            direction=m.direction,
            body=m.body,
            at=m.created_at,
            author="reporter"
            if m.direction is MessageDirection.FROM_REPORTER
            else f"{m.actor_type.value}:{m.actor_id}",
            delivery=None
            if m.direction is MessageDirection.FROM_REPORTER
            else (outcome.value if outcome is not None else state.value if state else None),
            segments=segments(m.body),
            read_at=m.read_at,
        )
        for m, state, outcome in rows
    )
    media = tuple(
        ThreadMedia(
            id=m.id,
            message_id=m.message_id,
            state=m.state.value,
            content_type=m.content_type or m.declared_content_type,
            at=m.created_at,
        )
        for m in session.scalars(
            select(MessageMedia)
            .where(MessageMedia.tip_id == tip_id)
            .order_by(MessageMedia.created_at, MessageMedia.id)
        )
    )
    events = session.execute(
        select(TipEvent.at, TipEvent.kind).where(TipEvent.tip_id == tip_id).order_by(TipEvent.id)
    ).all()
    return Thread(
        tip_id=tip.id,
        report_number=tip.report_number,
        reporter=None if reporter is None else pseudonym(reporter),
        reporter_opted_out=bool(reporter and reporter.sms_opted_out),
        messages=messages,
        media=media,
        timeline=tuple((at, kind.value) for at, kind in events),
    )


def send_reply(
    session: Session,
    tip: Tip,
    body: str,
    *,
    actor_type: ActorType,
    actor_id: str | int,
    now: datetime,
) -> TipMessage:
    """Write to the reporter: the message on the conversation, an outbox row due now, and the
    send enqueued once this transaction commits."""
    text = body.strip()
    if not text:
        raise ReplyRefused("the reply is empty")
    if len(text) > MAX_REPLY_CHARACTERS:
        raise ReplyRefused(f"the reply is longer than {MAX_REPLY_CHARACTERS} characters")
    reporter = session.get(Reporter, tip.reporter_id) if tip.reporter_id else None
    if reporter is None:
        raise ReplyRefused("this tip has no reporter number to answer")
    if reporter.sms_opted_out:
        raise ReplyRefused("the reporter opted out of texts (STOP): no text can reach them")
    message = TipMessage(
        tip_id=tip.id,
        direction=MessageDirection.TO_REPORTER,
        body=text,
        actor_type=actor_type,
        actor_id=str(actor_id),
        created_at=now,
    )
    session.add(message)
    session.flush()
    row = planned_row(
        tip,
        channel=NotificationChannel.SMS,
        contact_id=None,
        due_at=now,
        deadline_at=now + REPLY_DEADLINE,
        now=now,
        purpose=NotificationPurpose.REPORTER_REPLY,
    )
    row.message_id = message.id
    session.add(row)
    session.flush()
    timeline.record(
        session,
        tip,
        TipEventKind.MESSAGE_TO_REPORTER,
        at=now,
        actor_type=actor_type,
        actor_id=actor_id,
        channel="sms",
        message_id=message.id,
        notification_id=row.id,
        segments=segments(text),
    )
    tip.updated_at = now
    _send_after_commit(session, row.id)
    return message


def _send_after_commit(session: Session, notification_id: int) -> None:
    from flask import current_app

    from hotline.services import hotline

    if not current_app:
        return  # outside an app the sweep sends it
    jobs = hotline().jobs
    run_after_commit(session, lambda: jobs.enqueue(SEND, notification_id))


def mark_read(
    session: Session, tip: Tip, *, actor_type: ActorType, actor_id: str | int, now: datetime
) -> int:
    """Mark the reporter's unread messages read (one conditional update: two agents reading at
    once mark each message once). Returns how many were marked."""
    marked = session.execute(
        update(TipMessage)
        .where(
            TipMessage.tip_id == tip.id,
            TipMessage.direction == MessageDirection.FROM_REPORTER,
            TipMessage.read_at.is_(None),
        )
        .values(read_at=now, read_by=f"{actor_type.value}:{actor_id}")
        .execution_options(synchronize_session="fetch")
    )
    count = int(getattr(marked, "rowcount", 0) or 0)
    if count:
        timeline.record(
            session,
            tip,
            TipEventKind.MESSAGES_READ,
            at=now,
            actor_type=actor_type,
            actor_id=actor_id,
            count=count,
        )
    return count


#: What an agent is told of a reply's delivery, for the states the provider reports.
DELIVERY_STATES = tuple(
    o.value
    for o in (
        NotificationOutcome.QUEUED,
        NotificationOutcome.SENT,
        NotificationOutcome.DELIVERED,
        NotificationOutcome.UNDELIVERED,
        NotificationOutcome.FAILED,
    )
)
