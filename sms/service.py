"""What an incoming text does to the database, and what the hotline answers.

Runs inside the webhook's session (committed with the delivery's receipt, so a retried delivery
changes nothing twice). Rules:

- A keyword (STOP, START, HELP...) only records the number's state; after an opt-out nothing
  more is sent to that number, not even an answer.
- ``1 <report number>`` is a confirmation only from a number of an active contact, and only for
  a report actually sent to that number (:func:`dispatcher.confirm.confirmable_notifications`;
  a shared PSAP line: whoever was notified on it). A bare ``1`` from a contact confirms nothing
  (anyone can send a text from a contact's number): it is answered with how to confirm.
- Everything else is kept for the agents: a new SMS tip, or the reporter's open conversation
  when they texted (or were texted) within :data:`CONVERSATION_WINDOW`. A reporter is known only
  by the keyed hash and encrypted copy of their number (:mod:`hotline.core.reporters`).

The PIN of a new SMS tip is sent in the first answer (:data:`SEND_PIN_BY_SMS`). It goes only to
the number that texted, whose phone already holds the whole conversation in clear, so it reveals
nothing new to whoever holds that phone; what it adds is a way to follow up by calling, from any
phone, after deleting the thread (the answer says so). The hotline stores no PIN in clear (the
provider's message log keeps the answer as sent): the tip keeps only the PIN's keyed hash
(``Tip.pin_hash``), and the webhook guard (:mod:`hotline.web.webhooks`) keeps the answer in
``webhook_receipts`` for a week, to replay it on a retry, sealed: encrypted with a key derived
from HOTLINE_IDENTITY_KEY (:meth:`hotline.core.identity.IdentityKeyring.seal_receipt`), as it
keeps the voice menu's readback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import entry as dispatch
from dispatcher.confirm import confirm_notified, confirmable_notifications
from hotline.core import timeline
from hotline.core.identity import IdentityKeyring
from hotline.core.reporters import find_or_create_reporter, find_reporter, normalize_reporter_number
from hotline.core.tips import create_tip
from hotline.models import (
    ActorType,
    Channel,
    Contact,
    MessageDirection,
    PhoneNumber,
    Reporter,
    Tip,
    TipEventKind,
    TipLevel,
    TipMessage,
    TipStatus,
)
from sms import commands
from sms.commands import (
    ConfirmLatest,
    ConfirmReport,
    InboundSms,
    Keyword,
    KeywordCommand,
)

log = logging.getLogger(__name__)

#: A text within this long of the conversation's last message (either way) joins that tip; later
#: it opens a new one.
CONVERSATION_WINDOW = timedelta(hours=24)

#: What an example report number looks like in the hints.
EXAMPLE_REPORT = "1234567"

#: Send the PIN of a new SMS tip in the first answer (see the module's docstring for why).
SEND_PIN_BY_SMS = True


@dataclass(frozen=True)
class Reply:
    """What to answer; ``None`` sends nothing (an opted-out or unreachable number)."""

    text: str | None

    @classmethod
    def nothing(cls) -> Reply:
        return cls(None)


@dataclass(frozen=True)
class Sender:
    """Who texted, as far as the database knows."""

    #: E.164, in memory only; None for ``anonymous`` and anything that is not a number.
    number: str | None
    #: The directory's row for the number, when it has one.
    phone: PhoneNumber | None
    #: Active contacts using that number (several on a shared PSAP line).
    contacts: tuple[Contact, ...]

    @property
    def is_contact(self) -> bool:
        return bool(self.contacts)


def identify(session: Session, raw_from: str) -> Sender:
    number = normalize_reporter_number(raw_from)
    if number is None:
        return Sender(None, None, ())
    phone = session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == number))
    contacts: tuple[Contact, ...] = ()
    if phone is not None:
        contacts = tuple(
            session.scalars(
                select(Contact)
                .where(Contact.phone_number_id == phone.id, Contact.active.is_(True))
                .order_by(Contact.priority, Contact.id)
            )
        )
    return Sender(number, phone, contacts)


def handle_text(
    session: Session, keyring: IdentityKeyring, message: InboundSms, now: datetime
) -> Reply:
    """Apply one incoming text and say what to answer."""
    sender = identify(session, message.sender)
    command = message.command
    if isinstance(command, KeywordCommand):
        return _keyword(session, keyring, sender, command.keyword, now)
    if sender.is_contact and sender.phone is not None:
        if isinstance(command, ConfirmLatest):
            # No report number, no confirmation; and which reports wait is not said either.
            reply = commands.report_number_needed_reply(EXAMPLE_REPORT)
        elif isinstance(command, ConfirmReport):
            reply = _confirm_report(session, sender, command.report_number, now)
        else:
            return keep_text(session, keyring, message, sender, now)
        return Reply.nothing() if sender.phone.sms_opted_out else Reply(reply)
    return keep_text(session, keyring, message, sender, now)


# Keywords ---------------------------------------------------------------------------------------


def _keyword(
    session: Session, keyring: IdentityKeyring, sender: Sender, keyword: Keyword, now: datetime
) -> Reply:
    if sender.number is None:
        return Reply.nothing()
    reporter = find_reporter(session, keyring, sender.number)
    phone = sender.phone
    if keyword is Keyword.OPT_OUT:
        if phone is not None and not phone.sms_opted_out:
            phone.sms_opted_out = True
            phone.sms_opted_out_at = now
            log.info("phone number %s opted out of texts", phone.id)
        if reporter is None and phone is None:
            # Remembered (as hash and ciphertext only) so a later tip from this number is not
            # answered while the carrier blocks our texts.
            reporter = find_or_create_reporter(session, keyring, sender.number, now)
        if reporter is not None and not reporter.sms_opted_out:
            reporter.sms_opted_out = True
            _note_on_conversation(session, reporter, TipEventKind.REPORTER_SMS_OPTED_OUT, now)
        return Reply.nothing()
    if keyword is Keyword.OPT_IN:
        if phone is not None and phone.sms_opted_out:
            phone.sms_opted_out = False
            phone.sms_opted_out_at = None
            log.info("phone number %s opted in to texts again", phone.id)
        if reporter is not None and reporter.sms_opted_out:
            reporter.sms_opted_out = False
            _note_on_conversation(session, reporter, TipEventKind.REPORTER_SMS_OPTED_IN, now)
        # Twilio confirms the opt-in itself; a second text would only repeat it.
        return Reply.nothing()
    if _opted_out(phone, reporter):
        return Reply.nothing()
    return Reply(commands.help_reply())


def _opted_out(phone: PhoneNumber | None, reporter: Reporter | None) -> bool:
    return bool(
        (phone is not None and phone.sms_opted_out) or (reporter and reporter.sms_opted_out)
    )


def _note_on_conversation(
    session: Session, reporter: Reporter, kind: TipEventKind, now: datetime
) -> None:
    """Put an opt-out or opt-in on the reporter's latest open tip, so agents know whether their
    texts can reach the reporter."""
    tip = session.scalar(
        select(Tip)
        .where(Tip.reporter_id == reporter.id, Tip.status != TipStatus.CLOSED)
        .order_by(Tip.received_at.desc(), Tip.id.desc())
        .limit(1)
    )
    if tip is not None:
        timeline.record(session, tip, kind, at=now, actor_type=ActorType.REPORTER, channel="sms")


# Confirmations ----------------------------------------------------------------------------------


def _confirm_report(session: Session, sender: Sender, report_number: str, now: datetime) -> str:
    """``1 <report>``: that report, if it was sent to this number (by any channel: the e-mail
    tells them to text this too). Otherwise one refusal, whether or not it exists. The answer
    names nothing the sender did not type: the number they text from proves nothing."""
    rows = confirmable_notifications(session, number=sender.number, report_number=report_number)
    if not rows:
        log.info("sms confirmation refused: no such report sent to that number")
        return commands.not_sent_to_you_reply(report_number)
    outcome = confirm_notified(session, rows, via="sms", now=now)
    return commands.confirmed_reply(outcome, report_number)


# Texts for the agents ---------------------------------------------------------------------------


def keep_text(
    session: Session,
    keyring: IdentityKeyring,
    message: InboundSms,
    sender: Sender,
    now: datetime,
    *,
    join: bool = True,
) -> Reply:
    """Keep the words (and pictures) on the reporter's conversation or a new SMS tip."""
    if not message.body and not message.media:
        # Nothing to keep (an empty text); ask for the words.
        if sender.number is None or _opted_out(
            sender.phone, _reporter_of(session, keyring, sender)
        ):
            return Reply.nothing()
        return Reply(commands.empty_reply())
    reporter = (
        find_or_create_reporter(session, keyring, sender.number, now) if sender.number else None
    )
    language = commands.guess_language(message.body)
    tip = conversation_tip(session, reporter, now) if join and reporter is not None else None
    pin = None
    if tip is None:
        new = create_tip(
            session,
            keyring,
            channel=Channel.SMS,
            level=TipLevel.STANDARD,
            received_at=now,
            language=language,
            reporter=reporter,
            status=TipStatus.OPEN,
        )
        tip, pin = new.tip, new.pin
    _add_message(session, tip, message, now, follow_up=pin is None)
    if reporter is None or _opted_out(sender.phone, reporter):
        return Reply.nothing()
    if pin is not None:
        text = commands.new_tip_reply(
            tip.report_number, pin if SEND_PIN_BY_SMS else None, tip.language
        )
    else:
        text = commands.added_reply(tip.report_number, "es" if language == "es" else tip.language)
    if sender.is_contact:
        text += " " + commands.contact_hint(EXAMPLE_REPORT)
    return Reply(text)


def _reporter_of(session: Session, keyring: IdentityKeyring, sender: Sender) -> Reporter | None:
    return find_reporter(session, keyring, sender.number) if sender.number else None


def conversation_tip(session: Session, reporter: Reporter, now: datetime) -> Tip | None:
    """The reporter's latest SMS tip still open, when its last message (either way) is recent."""
    tip = session.scalar(
        select(Tip)
        .where(
            Tip.reporter_id == reporter.id,
            Tip.channel == Channel.SMS,
            Tip.status != TipStatus.CLOSED,
        )
        .order_by(Tip.received_at.desc(), Tip.id.desc())
        .limit(1)
    )
    if tip is None:
        return None
    last = session.scalar(
        select(TipMessage.created_at)
        .where(TipMessage.tip_id == tip.id)
        .order_by(TipMessage.created_at.desc(), TipMessage.id.desc())
        .limit(1)
    )
    latest = max(tip.received_at, last) if last is not None else tip.received_at
    return tip if now - latest <= CONVERSATION_WINDOW else None


def _add_message(
    session: Session, tip: Tip, message: InboundSms, now: datetime, *, follow_up: bool
) -> None:
    message_id = None
    if message.body:
        row = TipMessage(
            tip_id=tip.id,
            direction=MessageDirection.FROM_REPORTER,
            body=message.body,
            actor_type=ActorType.REPORTER,
            actor_id=None,
            created_at=now,
        )
        session.add(row)
        session.flush()
        message_id = row.id
        timeline.record(
            session,
            tip,
            TipEventKind.MESSAGE_FROM_REPORTER,
            at=now,
            actor_type=ActorType.REPORTER,
            channel=Channel.SMS.value,
            message_id=message_id,
            message_sid=message.message_sid,
        )
    if message.media:
        # Kept as the provider's URLs for now; fetching (and deleting the provider's copy)
        # happens outside the request, later.
        timeline.record(
            session,
            tip,
            TipEventKind.MESSAGE_MEDIA,
            at=now,
            actor_type=ActorType.REPORTER,
            channel=Channel.SMS.value,
            message_id=message_id,
            message_sid=message.message_sid,
            media=[{"url": m.url, "content_type": m.content_type} for m in message.media],
            fetched=False,
        )
    tip.updated_at = now
    if follow_up:
        dispatch.on_information_added(session, tip, now=now, note="the reporter sent another text")
