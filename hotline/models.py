"""The hotline's data, as SQLAlchemy 2 typed models.

Conventions:
- Every time is a timezone-aware UTC ``datetime`` (:class:`UTCDateTime`), on SQLite too, and comes
  from the injected clock: there are no database-side ``now()`` defaults.
- A phone number is its own row (:class:`PhoneNumber`): a PSAP line serves many schools, and
  opt-out, bad-number and last-called state belong to the number, not to whoever uses it.
- A reporter's number is never stored in clear (:class:`Reporter`).
- The timeline (:class:`TipEvent`) is append-only; the migration adds triggers that refuse
  UPDATE and DELETE on it.
- Every word a decision hangs on is a member of a ``StrEnum`` (a timeline entry's kind, an outbox
  row's outcome, an alert's kind), stored as its value and checked by the database.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from hotline.core.clock import ensure_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend. Naive values are refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = ensure_utc(value)
        if dialect.name == "sqlite":
            # SQLite keeps text; store it naive in UTC so it sorts and compares correctly.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            from datetime import UTC

            return value.replace(tzinfo=UTC)
        return ensure_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


def _enum(cls: type[enum.Enum], name: str, *, length: int = 32) -> Enum:
    # Stored as the value strings, checked by a constraint, so SQLite and PostgreSQL agree and a
    # new member needs only a migration of the check constraint.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


# Directory ------------------------------------------------------------------------------------


class EscalationStyle(enum.StrEnum):
    PARALLEL = "parallel"
    SEQUENTIAL = "sequential"


class ContactRole(enum.StrEnum):
    SCHOOL_CONTACT = "school_contact"
    DISTRICT_CONTACT = "district_contact"
    PSAP = "psap"
    LAW_ENFORCEMENT = "law_enforcement"
    PIO = "pio"
    #: The hotline's own supervisors on duty (no district, no school): called when a tip has no
    #: school, cannot be planned, or a leg has nobody left to call.
    DUTY = "duty"


#: Weekly business hours when a district sets none: Monday to Friday, 07:00 to 17:00 local time.
DEFAULT_BUSINESS_HOURS: dict[str, list[list[str]]] = {
    day: [["07:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


class District(Base):
    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    #: A ``holidays`` country or country-subdivision code: ``US`` or ``US-IL``.
    holiday_region: Mapped[str] = mapped_column(String(16))
    #: Weekly hours in local time: {"mon": [["07:00", "17:00"]], ...}; a missing day is closed.
    business_hours: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=lambda: {k: [list(v) for v in vs] for k, vs in DEFAULT_BUSINESS_HOURS.items()}
    )
    school_day_start: Mapped[time] = mapped_column(default=time(7, 30))
    school_day_end: Mapped[time] = mapped_column(default=time(15, 30))
    escalation_style: Mapped[EscalationStyle] = mapped_column(
        _enum(EscalationStyle, "escalation_style"), default=EscalationStyle.SEQUENTIAL
    )
    #: Sequential style: how long one contact has to confirm before the next is called. Two and
    #: a half minutes lets three school contacts and three district contacts all be called by
    #: minute 12.5 of the 20-minute Critical deadline (the planner shortens it further for longer
    #: chains).
    sequential_wait_seconds: Mapped[int] = mapped_column(default=150)
    #: Seconds an alert call rings before it is given up (Twilio accepts 5 to 600).
    ring_timeout_seconds: Mapped[int] = mapped_column(default=30)
    #: Ring too briefly for most voicemail systems to answer (the district prefers a retry to a
    #: voicemail). Off by default: a voicemail still tells a principal something happened.
    hang_up_before_voicemail: Mapped[bool] = mapped_column(default=False)
    #: Standard and Other tips wait this long for an agent to review before going out anyway.
    review_hold_seconds: Mapped[int] = mapped_column(default=15 * 60)
    #: Include a short summary of the reporter's words in e-mails (off: the tip is read behind a
    #: login).
    email_summary: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    schools: Mapped[list[School]] = relationship(back_populates="district")
    contacts: Mapped[list[Contact]] = relationship(back_populates="district")


class BreakKind(enum.StrEnum):
    BREAK = "break"
    SUMMER = "summer"


class DistrictBreak(Base):
    """A school break or summer recess: no school session and no business time (dates inclusive,
    in the district's time zone)."""

    __tablename__ = "district_breaks"

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[BreakKind] = mapped_column(_enum(BreakKind, "break_kind"))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    created_at: Mapped[datetime]


class School(Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    #: What callers key in; unique across all districts.
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Other names people use for it ("LHS"): matched like the name, by voice and by text.
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    district: Mapped[District] = relationship(back_populates="schools")
    contacts: Mapped[list[Contact]] = relationship(back_populates="school")


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    #: The number texted STOP: no SMS may go to it (Twilio answers 21610).
    sms_opted_out: Mapped[bool] = mapped_column(default=False)
    sms_opted_out_at: Mapped[datetime | None]
    #: The provider said this number cannot be reached (invalid, unreachable, landline for SMS).
    bad_for_calls: Mapped[bool] = mapped_column(default=False)
    bad_for_sms: Mapped[bool] = mapped_column(default=False)
    bad_reason: Mapped[str | None] = mapped_column(String(200))
    bad_since: Mapped[datetime | None]
    last_called_at: Mapped[datetime | None]
    last_texted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    contacts: Mapped[list[Contact]] = relationship(back_populates="phone_number")


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None only for the hotline's own duty rows.
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), index=True)
    #: None for district-wide rows (district contacts, a PSAP or police serving every school).
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"), index=True)
    role: Mapped[ContactRole] = mapped_column(_enum(ContactRole, "contact_role"))
    #: 1 = primary, 2 = secondary, ...
    priority: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    phone_number_id: Mapped[int] = mapped_column(ForeignKey("phone_numbers.id"), index=True)
    #: Digits to send once the line answers (a desk extension).
    extension: Mapped[str | None] = mapped_column(String(16))
    #: The contact asked for texts as well as calls.
    sms: Mapped[bool] = mapped_column(default=False)
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(default=True)
    deactivated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    district: Mapped[District | None] = relationship(back_populates="contacts")
    school: Mapped[School | None] = relationship(back_populates="contacts")
    phone_number: Mapped[PhoneNumber] = relationship(back_populates="contacts")


# Tips -----------------------------------------------------------------------------------------


class Channel(enum.StrEnum):
    VOICE = "voice"
    SMS = "sms"
    WEB = "web"


class TipLevel(enum.StrEnum):
    CRITICAL = "critical"
    STANDARD = "standard"
    OTHER = "other"


class TipStatus(enum.StrEnum):
    #: The reporter is still giving it (a call in progress, an SMS intake under way).
    INTAKE = "intake"
    #: The reporter hung up or went silent before finishing; what was gathered is kept.
    INCOMPLETE = "incomplete"
    OPEN = "open"
    CLOSED = "closed"


class ActorType(enum.StrEnum):
    SYSTEM = "system"
    REPORTER = "reporter"
    CONTACT = "contact"
    AGENT = "agent"


class TipEventKind(enum.StrEnum):
    """What a line of a tip's timeline says happened. Code reads the timeline by kind (the
    watchdog looks for ``leg.exhausted``, an update carries every ``update_planned`` note)."""

    # The tip itself.
    TIP_RECEIVED = "tip.received"
    #: The reporter finished the intake: the tip is for the agents and the dispatcher.
    TIP_OPENED = "tip.opened"
    #: The reporter hung up or went silent first; what was gathered is kept.
    TIP_INCOMPLETE = "tip.incomplete"
    TIP_RECLASSIFIED = "tip.reclassified"
    #: The tip's school was set or changed (by the text bot or an agent); it is re-planned.
    TIP_SCHOOL_SET = "tip.school_set"
    #: What the triage of a text's words found (Critical words, negated threat words).
    TIP_TRIAGED = "tip.triaged"
    #: Made by the reconciliation with the provider after an outage.
    TIP_RECONCILED = "tip.reconciled"
    #: A school the caller was offered but did not confirm.
    SCHOOL_UNCONFIRMED = "school.unconfirmed"
    #: What the network said of the caller ID (``StirVerstat``) of a call about the tip.
    CALL_CALLER_VERIFICATION = "call.caller_verification"
    RECORDING_ADDED = "recording.added"
    # Follow-up by report number and PIN.
    FOLLOWUP_STARTED = "followup.started"
    FOLLOWUP_FAILED = "followup.failed"
    FOLLOWUP_LOCKED = "followup.locked"
    FOLLOWUP_RECORDING = "followup.recording"
    # The anonymous conversation.
    MESSAGE_FROM_REPORTER = "message.from_reporter"
    MESSAGE_TO_REPORTER = "message.to_reporter"
    MESSAGE_MEDIA = "message.media"
    #: Media of a text brought in by the reconciliation, still at the provider.
    MESSAGE_MEDIA_AT_PROVIDER = "message.media_at_provider"
    #: A text's picture (video, audio) was fetched from the provider and is kept by the hotline.
    MESSAGE_MEDIA_FETCHED = "message.media_fetched"
    #: Fetched but not kept: a type or a size the media policy refuses (:mod:`sms.media`).
    MESSAGE_MEDIA_REFUSED = "message.media_refused"
    #: Could not be fetched, after every attempt or for good: it is still at the provider.
    MESSAGE_MEDIA_FAILED = "message.media_failed"
    #: The provider's copy was deleted: the hotline's is the only one.
    MESSAGE_MEDIA_DELETED_AT_PROVIDER = "message.media_deleted_at_provider"
    MESSAGES_HEARD = "messages.heard"
    #: An agent marked the reporter's messages read.
    MESSAGES_READ = "messages.read"
    REPORTER_SMS_OPTED_OUT = "reporter.sms_opted_out"
    REPORTER_SMS_OPTED_IN = "reporter.sms_opted_in"
    #: The text bot asked the reporter for something (the school, what happened).
    INTAKE_ASKED = "intake.asked"
    #: The text bot stopped asking: the tip waits for an agent.
    INTAKE_HANDED_TO_AGENT = "intake.handed_to_agent"
    # The tip's plan.
    NOTIFICATIONS_PLANNED = "notifications.planned"
    NOTIFICATIONS_REPLANNED = "notifications.replanned"
    #: New information to send on; its ``note`` is what the next update carries.
    NOTIFICATIONS_UPDATE_PLANNED = "notifications.update_planned"
    NOTIFICATIONS_PLAN_FAILED = "notifications.plan_failed"
    NOTIFICATIONS_DUTY_FALLBACK = "notifications.duty_fallback"
    # One outbox row.
    NOTIFICATION_SENT = "notification.sent"
    NOTIFICATION_FAILED = "notification.failed"
    NOTIFICATION_UNKNOWN = "notification.unknown"
    NOTIFICATION_RETRY = "notification.retry"
    #: An alert call nobody answered is tried once more.
    NOTIFICATION_RETRY_PLANNED = "notification.retry_planned"
    NOTIFICATION_CALL_ENDED = "notification.call_ended"
    #: The provider was asked about a call whose final status never came.
    NOTIFICATION_STATUS_CHECKED = "notification.status_checked"
    NOTIFICATION_SMS_FAILED = "notification.sms_failed"
    NOTIFICATION_VOICEMAIL_LEFT = "notification.voicemail_left"
    NOTIFICATION_LATE_MACHINE_VERDICT_IGNORED = "notification.late_machine_verdict_ignored"
    NOTIFICATION_COLLEAGUE_TOLD = "notification.colleague_told"
    # Legs and confirmations.
    LEG_CONFIRMED = "leg.confirmed"
    #: A contact confirmed a leg that had ended already (or a tip without one).
    RECEIPT_CONFIRMED = "receipt.confirmed"
    LEG_MOVED_ON = "leg.moved_on"
    LEG_ROUND_RESTARTED = "leg.round_restarted"
    LEG_EXHAUSTED = "leg.exhausted"
    #: An alert about the tip reached the agents' feed.
    ALERT_RAISED = "alert.raised"


class Reporter(Base):
    """Someone who called or texted. Found again by a keyed hash; texted back through an
    encrypted copy of the number that only the sending code opens."""

    __tablename__ = "reporters"

    id: Mapped[int] = mapped_column(primary_key=True)
    number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    number_encrypted: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16))
    sms_opted_out: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class Tip(Base):
    __tablename__ = "tips"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Public, random, 6 to 8 digits: what the reporter quotes to follow up.
    report_number: Mapped[str] = mapped_column(String(8), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(64))
    pin_key_id: Mapped[str] = mapped_column(String(16))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    #: BCP 47 tag of the language the reporter used (en, es, ...).
    language: Mapped[str] = mapped_column(String(16), default="en")
    category: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[TipLevel] = mapped_column(_enum(TipLevel, "tip_level"))
    type: Mapped[str | None] = mapped_column(String(64))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("reporters.id"), index=True)
    status: Mapped[TipStatus] = mapped_column(_enum(TipStatus, "tip_status"), index=True)
    #: When the tip reached the hotline: every deadline runs from here.
    received_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    #: An agent flagged a possible crime or safety issue: law enforcement is told too.
    possible_crime: Mapped[bool] = mapped_column(default=False)
    #: When an agent released the tip for notification (ends the review hold early).
    reviewed_at: Mapped[datetime | None]
    #: When every required recipient must have been sent its notification.
    notify_deadline_at: Mapped[datetime | None]
    #: Bumped on every (re-)plan of the tip's notifications; 0 means not planned yet.
    plan_version: Mapped[int] = mapped_column(default=0)
    #: Wrong PINs given for this report, across calls and channels; reset by a right one.
    followup_failures: Mapped[int] = mapped_column(default=0)
    #: Follow-up is refused until then (a wrong PIN and a locked report sound alike).
    followup_locked_until: Mapped[datetime | None]
    #: Planning this tip failed this many times in a row; the sweep tries again at
    #: ``plan_retry_at`` (the duty line was told at the first failure).
    plan_failures: Mapped[int] = mapped_column(default=0)
    plan_retry_at: Mapped[datetime | None]
    plan_error: Mapped[str | None] = mapped_column(String(500))
    #: The text bot is asking the reporter for the school until then: a Critical tip's duty
    #: leg waits for the answer that long (and no longer) before calling.
    school_expected_until: Mapped[datetime | None]

    school: Mapped[School | None] = relationship()
    reporter: Mapped[Reporter | None] = relationship()
    events: Mapped[list[TipEvent]] = relationship(order_by="TipEvent.id", viewonly=True)
    recordings: Mapped[list[Recording]] = relationship(back_populates="tip")


class TipEvent(Base):
    """One line of a tip's timeline. Append-only: never updated, never deleted."""

    __tablename__ = "tip_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[TipEventKind] = mapped_column(_enum(TipEventKind, "tip_event_kind", length=64))
    actor_type: Mapped[ActorType] = mapped_column(_enum(ActorType, "actor_type"))
    #: Who, within the actor type: an agent's user id, a contact id; None for the system and the
    #: (anonymous) reporter.
    actor_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    tip: Mapped[Tip] = relationship()


class MessageDirection(enum.StrEnum):
    TO_REPORTER = "to_reporter"
    FROM_REPORTER = "from_reporter"


class TipMessage(Base):
    """A message in the anonymous two-way conversation about a tip."""

    __tablename__ = "tip_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), index=True)
    direction: Mapped[MessageDirection] = mapped_column(
        _enum(MessageDirection, "message_direction")
    )
    body: Mapped[str] = mapped_column(Text)
    #: Who wrote it: the reporter, or an agent or contact (by id).
    actor_type: Mapped[ActorType] = mapped_column(_enum(ActorType, "actor_type"))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    #: When the reporter last heard it read out on a follow-up call.
    heard_at: Mapped[datetime | None]
    #: A reporter's message: when an agent first marked it read, and who.
    read_at: Mapped[datetime | None]
    read_by: Mapped[str | None] = mapped_column(String(64))


class IntakeStep(enum.StrEnum):
    """Where the text bot is in a tip's guided intake (:mod:`sms.intake`)."""

    ASK_SCHOOL = "ask_school"
    #: The bot offered one or more schools: "reply 1 if it is ...".
    CONFIRM_SCHOOL = "confirm_school"
    ASK_WHAT = "ask_what"
    #: Nothing more to ask.
    DONE = "done"
    #: The bot stopped asking (two misses, or the reporter asked for a person).
    WITH_AGENT = "with_agent"


class SmsIntake(Base):
    """The guided intake of an SMS tip: one row per tip, changed by one conditional update per
    turn (the step it was read at), so two texts answered at once cannot both advance it."""

    __tablename__ = "sms_intakes"

    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), primary_key=True)
    step: Mapped[IntakeStep] = mapped_column(_enum(IntakeStep, "intake_step"))
    #: Answers in a row that did not fit the current question.
    misses: Mapped[int] = mapped_column(default=0)
    #: The schools offered at ``confirm_school``, in the order offered (1, 2, ...).
    offered_school_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    #: A turn counter: the conditional update's guard.
    turn: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]


class CallDirection(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[CallDirection] = mapped_column(_enum(CallDirection, "call_direction"))
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("reporters.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    phone_number_id: Mapped[int | None] = mapped_column(ForeignKey("phone_numbers.id"))
    status: Mapped[str] = mapped_column(String(32))
    #: Highest SequenceNumber applied: older or repeated status callbacks change nothing.
    last_sequence_number: Mapped[int] = mapped_column(default=-1)
    answered_by: Mapped[str | None] = mapped_column(String(32))
    duration_seconds: Mapped[int | None]
    #: What the call keeps between webhooks, stamped with which it is
    #: (:mod:`hotline.core.call_state`): where a caller is in the voice menu, or an alert call's
    #: outbox rows and confirmation.
    flow_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    tip: Mapped[Tip | None] = relationship()


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32))
    duration_seconds: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(String(64))
    #: The audio, once fetched from the provider (which then deletes its copy).
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    tip: Mapped[Tip | None] = relationship(back_populates="recordings")


# Media of texts ---------------------------------------------------------------------------------


class MediaState(enum.StrEnum):
    """Where a text's media item is on its way from the provider (:mod:`sms.media`)."""

    #: Known by its provider URL; a worker will fetch it (at ``next_attempt_at``).
    PENDING = "pending"
    #: A worker claimed it and is fetching it (until ``next_attempt_at``, its lease).
    FETCHING = "fetching"
    #: Fetched, checked and stored (``stored_in``, ``storage_key``).
    FETCHED = "fetched"
    #: Fetched and refused by the media policy (``refused_reason``); not stored.
    REFUSED = "refused"
    #: Could not be fetched (``last_error``); it is still at the provider.
    FAILED = "failed"


class MediaStoreKind(enum.StrEnum):
    """Where the bytes of fetched media are kept (``HOTLINE_MEDIA_STORE``)."""

    #: Files under ``instance/media/``.
    DIRECTORY = "directory"
    #: The ``media_contents`` table.
    DATABASE = "database"


class MessageMedia(Base):
    """One media item of an incoming text: created by the webhook with the provider's URL,
    fetched by a worker, checked against the media policy, stored, then deleted at the provider
    (the URL is cleared with it). Every change of ``state`` is one conditional update
    (:mod:`sms.media`).

    ``next_attempt_at`` is when a worker should next act on the item (fetch it, or delete the
    provider's copy), and while it is ``fetching`` the end of the worker's lease; NULL when
    nothing is left to do."""

    __tablename__ = "message_media"
    # One row per media item of a text: a text delivered twice is kept once.
    __table_args__ = (UniqueConstraint("message_sid", "media_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), index=True)
    #: The words that came with it (None for a picture alone).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("tip_messages.id"))
    message_sid: Mapped[str | None] = mapped_column(String(64))
    #: Its N in the webhook's ``MediaUrl{N}``.
    media_index: Mapped[int]
    #: The provider's URL, kept only until the provider's copy is deleted.
    provider_url: Mapped[str | None] = mapped_column(String(500))
    #: What the webhook said it is (``MediaContentType{N}``).
    declared_content_type: Mapped[str | None] = mapped_column(String(64))
    #: What the provider served (normalised: no parameters, lower case).
    content_type: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None]
    #: Of the bytes fetched (refused items included: what was sent, even if not kept).
    sha256: Mapped[str | None] = mapped_column(String(64))
    stored_in: Mapped[MediaStoreKind | None] = mapped_column(_enum(MediaStoreKind, "media_store"))
    storage_key: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[MediaState] = mapped_column(_enum(MediaState, "media_state"))
    #: Fetch attempts so far (claims, counted as they are made).
    attempts: Mapped[int] = mapped_column(default=0)
    #: Attempts to delete the provider's copy so far.
    delete_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    #: Last handed to the job queue; the sweep hands it again only after a while.
    enqueued_at: Mapped[datetime | None]
    #: The attempt holding the claim while ``fetching``.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    #: Why the media policy refused it.
    refused_reason: Mapped[str | None] = mapped_column(String(200))
    #: The last failure, without URLs or numbers (the kind of error, the provider's codes).
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: When it was fetched (and kept or refused).
    fetched_at: Mapped[datetime | None]
    provider_deleted_at: Mapped[datetime | None]


class MediaContent(Base):
    """The bytes of a fetched media item, when ``HOTLINE_MEDIA_STORE=database``."""

    __tablename__ = "media_contents"

    media_id: Mapped[int] = mapped_column(ForeignKey("message_media.id"), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


# Notifications ----------------------------------------------------------------------------------


class LegKind(enum.StrEnum):
    #: The school's points of contact (falling back to the district's contacts).
    POC = "poc"
    PSAP = "psap"
    LAW_ENFORCEMENT = "law_enforcement"
    #: The hotline's supervisors on duty: no school, nobody callable, or a plan that failed.
    DUTY = "duty"


class LegState(enum.StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    #: No longer required (the tip's level changed).
    CANCELLED = "cancelled"


class NotificationLeg(Base):
    """A group of recipients chased until one of them confirms (Critical tips)."""

    __tablename__ = "notification_legs"
    __table_args__ = (UniqueConstraint("tip_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), index=True)
    kind: Mapped[LegKind] = mapped_column(_enum(LegKind, "leg_kind"))
    state: Mapped[LegState] = mapped_column(_enum(LegState, "leg_state"))
    #: Times the leg went through all its people without a confirmation, plus one.
    round: Mapped[int] = mapped_column(default=1)
    opened_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    confirmed_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    #: voice, sms, portal
    confirmed_via: Mapped[str | None] = mapped_column(String(16))
    #: The watchdog already raised its "unconfirmed after 10 minutes" alert for this leg.
    unconfirmed_alerted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class NotificationChannel(enum.StrEnum):
    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"


class NotificationPurpose(enum.StrEnum):
    ALERT = "alert"
    #: New information on a tip already notified.
    UPDATE = "update"
    #: A leg ran out of people: the district and law enforcement are kept informed.
    ESCALATION = "escalation"
    #: An agent's (or enduser's) text to the reporter (``Notification.message_id``): sent from
    #: the hotline number to the number the reporter texted from, opened only to send it.
    REPORTER_REPLY = "reporter_reply"


class NotificationState(enum.StrEnum):
    PLANNED = "planned"
    #: A worker took it (lease until ``lease_until``); nothing has left the building yet.
    CLAIMED = "claimed"
    #: The request to the provider is (or was) under way: if the worker dies now, whether it
    #: went out is unknown, and it is never re-sent blindly.
    SENDING = "sending"
    SENT = "sent"
    #: Sent, with an outcome we cannot know (timeout, 5xx, a worker lost mid-request).
    UNKNOWN = "unknown"
    FAILED = "failed"
    #: Not needed any more (leg confirmed, level changed, re-planned).
    CANCELLED = "cancelled"


#: States from which a notification will still be sent.
PENDING_NOTIFICATION_STATES = (NotificationState.PLANNED, NotificationState.CLAIMED)


class NotificationOutcome(enum.StrEnum):
    """What came of an outbox row: the hotline's own verdicts, and the provider's final call
    statuses and message statuses (stored as the provider spells them)."""

    #: The provider took the request; no status has come back yet.
    ACCEPTED = "accepted"
    #: The recipient had no usable number or address: nothing was sent.
    NO_ADDRESS = "no-address"
    #: Sending raised unexpectedly: it may have gone out.
    ERROR = "error"
    #: The provider or mail server left it unknowable (timeout, 5xx).
    UNKNOWN = "unknown"
    #: Refused for good (also Twilio's call and message status ``failed``).
    FAILED = "failed"
    #: The worker stopped while the request was under way.
    WORKER_LOST = "worker-lost"
    # Why a pending row was cancelled.
    LEG_CLOSED = "leg-closed"
    LEG_CONFIRMED = "leg-confirmed"
    REPLANNED = "replanned"
    #: The benchmark cancels what its bursts leave planned (bench/dispatch_latency.py).
    BENCH_CLEANUP = "bench-cleanup"
    #: A machine answered the alert call and the voicemail was left on it.
    VOICEMAIL = "voicemail"
    # A call's final status (hotline.core.calls.FINAL_CALL_STATUSES; ``failed`` above).
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"
    # A text's status (``accepted``, ``failed`` and ``canceled`` above).
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    READ = "read"
    PARTIALLY_DELIVERED = "partially_delivered"


class Notification(Base):
    """The outbox: one row per message to send, with when it is due and by when it must go."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), index=True)
    leg_id: Mapped[int | None] = mapped_column(ForeignKey("notification_legs.id"), index=True)
    #: A reporter reply's message (``purpose`` REPORTER_REPLY); None for everything else.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("tip_messages.id"), index=True)
    purpose: Mapped[NotificationPurpose] = mapped_column(
        _enum(NotificationPurpose, "notification_purpose")
    )
    channel: Mapped[NotificationChannel] = mapped_column(
        _enum(NotificationChannel, "notification_channel")
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    phone_number_id: Mapped[int | None] = mapped_column(ForeignKey("phone_numbers.id"))
    #: The address at planning time (a directory change later does not redirect a sent alert).
    email: Mapped[str | None] = mapped_column(String(254))
    #: The tip's level when this was planned (a later upgrade notifies the same people again).
    level: Mapped[TipLevel] = mapped_column(_enum(TipLevel, "tip_level"))
    #: Order within the leg's round (sequential escalation), 0 for everything else.
    position: Mapped[int] = mapped_column(default=0)
    round: Mapped[int] = mapped_column(default=1)
    plan_version: Mapped[int] = mapped_column(default=1)
    state: Mapped[NotificationState] = mapped_column(
        _enum(NotificationState, "notification_state"), index=True
    )
    due_at: Mapped[datetime] = mapped_column(index=True)
    #: The send deadline: past it, the watchdog raises an alert.
    deadline_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    #: Last handed to the task queue; the sweep hands it again only after a while.
    enqueued_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    #: What came of it: accepted, completed, no-answer, busy, delivered, leg-confirmed, ...
    outcome: Mapped[NotificationOutcome | None] = mapped_column(
        _enum(NotificationOutcome, "notification_outcome")
    )
    last_error: Mapped[str | None] = mapped_column(String(500))
    past_due_alerted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    tip: Mapped[Tip] = relationship()
    contact: Mapped[Contact | None] = relationship()
    leg: Mapped[NotificationLeg | None] = relationship()


class AlertKind(enum.StrEnum):
    """Why something on the agents' feed needs a person now."""

    #: The tip has no school: no school contact can be told.
    SCHOOL_UNKNOWN = "school_unknown"
    #: A leg the plan requires has nobody who can be called.
    LEG_UNREACHABLE = "leg_unreachable"
    #: Nobody on a leg confirmed within 10 minutes.
    LEG_UNCONFIRMED = "leg_unconfirmed"
    #: Everyone on a leg was called without a confirmation.
    LEG_EXHAUSTED = "leg_exhausted"
    #: The tip's notifications could not be planned.
    PLAN_FAILED = "plan_failed"
    #: Nobody on the duty line can be notified either.
    DUTY_UNREACHABLE = "duty_unreachable"
    #: The watchdog cannot chase a leg.
    WATCHDOG_FAILED = "watchdog_failed"
    NOTIFICATION_PAST_DUE = "notification_past_due"
    NOTIFICATION_UNKNOWN = "notification_unknown"
    NOTIFICATION_FAILED = "notification_failed"
    EMAIL_UNKNOWN = "email_unknown"
    EMAIL_FAILED = "email_failed"
    #: The reconciliation made tips of what arrived during an outage.
    OUTAGE_RECOVERED = "outage_recovered"
    #: A text's words made the tip Critical: an agent confirms (or lowers) the level.
    LEVEL_TO_CONFIRM = "level_to_confirm"
    #: Threat words came negated ("not a real gun"): the tip stayed Standard; an agent decides.
    THREAT_WORDS_NEGATED = "threat_words_negated"
    #: The reporter asked for a person, or the text bot could not get its answers.
    REPORTER_NEEDS_AGENT = "reporter_needs_agent"
    #: A text's picture could not be fetched from the provider, or not deleted there.
    MEDIA_FAILED = "media_failed"


class Alert(Base):
    """The agents' feed: something about a tip needs a person now."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"), index=True)
    kind: Mapped[AlertKind] = mapped_column(_enum(AlertKind, "alert_kind", length=64))
    message: Mapped[str] = mapped_column(String(500))
    #: One alert per condition: the watchdog can run any number of times.
    dedupe_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(index=True)
    #: The condition came back (another round of a leg nobody confirms): the same alert is
    #: updated and shown again instead of a new one.
    updated_at: Mapped[datetime | None]
    occurrences: Mapped[int] = mapped_column(default=1)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


# Plumbing -------------------------------------------------------------------------------------


class WebhookReceipt(Base):
    """One row per webhook delivery the app has acted on, so a retry changes nothing twice.

    The key is Twilio's ``I-Twilio-Idempotency-Token`` when sent, otherwise the route, the URL
    (flows put a step counter in it) and a digest of the parameters. The response is kept,
    encrypted (it may read out a reporter's PIN), so a retry gets the same answer.
    """

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    content_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(index=True)


class InboundMessageSid(Base):
    """The provider's sid of every incoming text the hotline handled, noted in the transaction
    that handled it (its webhook, or the outage reconciliation that found it in the provider's
    log). Unique, so a text is never made a tip twice; kept as long as webhook receipts."""

    __tablename__ = "inbound_message_sids"
    __table_args__ = (UniqueConstraint("sid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64))
    #: ``webhook`` or ``provider`` (brought in by the reconciliation).
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(index=True)


class Heartbeat(Base):
    """Last sign of life of a background process (``worker``, ``beat``), for /healthz."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(String(200))


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _timeline_is_append_only(session: Session, _flush_context: Any, _instances: Any) -> None:
    # The database triggers are the real guard; this fails earlier, with a clear message.
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, TipEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError("the tip timeline is append-only")
