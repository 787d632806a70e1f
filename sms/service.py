"""What an incoming text does to the database, and what the hotline answers.

Runs inside the webhook's session (committed with the delivery's receipt, so a retried delivery
changes nothing twice). Rules:

- A keyword (STOP, START, HELP...) only records the number's state; after an opt-out nothing
  more is sent to that number, not even an answer.
- ``1 <report number>`` is a confirmation only from a number of an active contact, and only for
  a report actually sent to that number (:func:`dispatcher.confirm.confirmable_notifications`;
  a shared PSAP line: whoever was notified on it). A bare ``1`` from a contact confirms nothing
  (anyone can send a text from a contact's number): it is answered with how to confirm.
- Everything else is kept for the agents: on the reporter's conversation (their open tip that
  last wrote to them, :func:`conversation_tip`), or as a new SMS tip whose level the words give
  (:mod:`sms.triage`) and whose school they name; the text bot (:mod:`sms.intake`) then asks
  for what is missing. A reporter is known only by the keyed hash and encrypted copy of their
  number (:mod:`hotline.core.reporters`).
- ``TIP <report number> <PIN> <words>`` adds to a report from any phone, with the follow-up
  call's lockout; ``NEW`` starts a new report.

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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dispatcher import entry as dispatch
from dispatcher.confirm import confirm_notified, confirmable_notifications
from dispatcher.plan_writer import raise_alert
from hotline.core import timeline
from hotline.core.identity import IdentityKeyring
from hotline.core.reporters import find_or_create_reporter, find_reporter, normalize_reporter_number
from hotline.core.tips import (
    change_classification,
    create_tip,
    find_tip_for_followup,
    record_followup_failure,
    record_followup_success,
    set_school,
)
from hotline.models import (
    ActorType,
    AlertKind,
    Channel,
    Contact,
    IntakeStep,
    MessageDirection,
    PhoneNumber,
    Reporter,
    School,
    SmsIntake,
    Tip,
    TipEventKind,
    TipLevel,
    TipMessage,
    TipStatus,
)
from hotline.services import hotline
from ivr_flows.school_match import SchoolIndex, SchoolName
from sms import commands, intake, media
from sms.commands import (
    ConfirmLatest,
    ConfirmReport,
    FollowUp,
    InboundSms,
    Keyword,
    KeywordCommand,
    NewReport,
)
from sms.triage import Triage, triage

log = logging.getLogger(__name__)

#: How long a Critical tip's duty line waits for the school the bot asked the reporter for
#: (from the tip's arrival): an answer within it sends the tip to the school's own people.
SCHOOL_ANSWER_WAIT = timedelta(minutes=3)

#: Texts from one number within FLOOD_WINDOW before they are no longer answered one by one
#: (outside an app; the app reads ``HOTLINE_SMS_FLOOD_PER_MINUTE``).
DEFAULT_FLOOD_PER_MINUTE = 12
FLOOD_WINDOW = timedelta(minutes=1)

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
        return _keyword(session, keyring, message, sender, command.keyword, now)
    if isinstance(command, FollowUp):
        return follow_up(session, keyring, message, sender, command, now)
    if isinstance(command, NewReport):
        return keep_text(session, keyring, message, sender, now, join=False)
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
    session: Session,
    keyring: IdentityKeyring,
    message: InboundSms,
    sender: Sender,
    keyword: Keyword,
    now: datetime,
) -> Reply:
    """What the carrier rules require (the opt-out recorded, the HELP answer), and the word
    kept on the reporter's conversation too: "help" from a reporter may be a call for help."""
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
            _note_on_conversation(
                session, reporter, TipEventKind.REPORTER_SMS_OPTED_OUT, now, message
            )
        return Reply.nothing()
    if keyword is Keyword.OPT_IN:
        if phone is not None and phone.sms_opted_out:
            phone.sms_opted_out = False
            phone.sms_opted_out_at = None
            log.info("phone number %s opted in to texts again", phone.id)
        if reporter is not None and reporter.sms_opted_out:
            reporter.sms_opted_out = False
            _note_on_conversation(
                session, reporter, TipEventKind.REPORTER_SMS_OPTED_IN, now, message
            )
        # Twilio confirms the opt-in itself; a second text would only repeat it.
        return Reply.nothing()
    if _opted_out(phone, reporter):
        return Reply.nothing()
    if sender.is_contact:
        return Reply(commands.help_reply())
    # A reporter's HELP: the carrier's answer, and the word on their conversation (a new one
    # flagged for an agent: "help" may be all a frightened student manages to send).
    return keep_text(
        session, keyring, message, sender, now, prefix=commands.help_reply(), flag_new=True
    )


def _opted_out(phone: PhoneNumber | None, reporter: Reporter | None) -> bool:
    return bool(
        (phone is not None and phone.sms_opted_out) or (reporter and reporter.sms_opted_out)
    )


def _note_on_conversation(
    session: Session, reporter: Reporter, kind: TipEventKind, now: datetime, message: InboundSms
) -> None:
    """Put an opt-out or opt-in, and the word itself, on the reporter's conversation, so agents
    know whether their texts can reach the reporter."""
    tip = conversation_tip(session, reporter)
    if tip is not None:
        _add_message(session, tip, message, now, follow_up=False)
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
    prefix: str | None = None,
    flag_new: bool = False,
) -> Reply:
    """Keep the words (and pictures) on the reporter's open conversation or a new SMS tip, read
    them (triage, the intake's question) and say what to answer. ``prefix`` goes before the
    answer (the HELP text); ``flag_new``: a new tip goes on the agents' feed at once."""
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
    found = triage(message.body)
    flooding = reporter is not None and is_flooding(session, reporter, now)
    conversation = conversation_tip(session, reporter) if reporter is not None else None
    # A flood of NEW makes no flood of tips: while flooding, every text joins the conversation.
    tip = conversation if join or (flooding and conversation) else None
    if tip is None:
        tip, pin, question = _new_sms_tip(session, keyring, message, reporter, found, now)
        if flag_new:
            _hand_to_agent(session, tip, now, why="its first text was HELP")
    else:
        pin = None
        _add_message(session, tip, message, now, follow_up=True)
        _apply_triage(session, tip, found, now)
        question = None if flooding else _intake_turn(session, tip, message, found, now)
    if flooding:
        _flag_flood(session, tip, now)
        return Reply.nothing()
    if reporter is None or _opted_out(sender.phone, reporter):
        return Reply.nothing()
    text = _answer(session, tip, pin, question, language)
    if sender.is_contact:
        text += " " + commands.contact_hint(EXAMPLE_REPORT)
    return Reply(f"{prefix} {text}" if prefix else text)


def is_flooding(session: Session, reporter: Reporter, now: datetime) -> bool:
    """The reporter's number sent at least the flood rate of texts in the last minute (this one
    not yet counted): each is still kept and triaged, but no longer answered one by one."""
    limit = hotline().settings.sms_flood_per_minute if current_app else DEFAULT_FLOOD_PER_MINUTE
    recent = session.scalar(
        select(func.count(TipMessage.id))
        .join(Tip, Tip.id == TipMessage.tip_id)
        .where(
            Tip.reporter_id == reporter.id,
            TipMessage.direction == MessageDirection.FROM_REPORTER,
            TipMessage.created_at > now - FLOOD_WINDOW,
        )
    )
    return (recent or 0) >= limit


def _flag_flood(session: Session, tip: Tip, now: datetime) -> None:
    raise_alert(
        session,
        tip=tip,
        kind=AlertKind.REPORTER_NEEDS_AGENT,
        message=(
            f"Report {tip.report_number}: the reporter's number is sending texts faster than the "
            "flood limit. Every text is kept and triaged, but no longer answered one by one; "
            "read the conversation."
        ),
        key=f"reporter-flooding:{tip.id}",
        now=now,
    )


def _answer(
    session: Session, tip: Tip, pin: str | None, question: Question | None, language: str
) -> str:
    offered = _offered_names(session, question)
    worded = (
        None if question is None else commands.intake_question(question.ask, tip.language, offered)
    )
    if pin is not None:
        return commands.new_tip_reply(
            tip.report_number, pin if SEND_PIN_BY_SMS else None, tip.language, worded
        )
    if worded is not None:
        return commands.reporter_reply(worded, tip.language)
    return commands.added_reply(tip.report_number, "es" if language == "es" else tip.language)


@dataclass(frozen=True)
class Question:
    """The intake's next question for this tip, and the schools it offers."""

    ask: str
    offered: tuple[int, ...] = ()


def _offered_names(session: Session, question: Question | None) -> list[str]:
    if question is None or not question.offered:
        return []
    names = {
        s.id: s.name for s in session.scalars(select(School).where(School.id.in_(question.offered)))
    }
    return [names[i] for i in question.offered if i in names]


def _new_sms_tip(
    session: Session,
    keyring: IdentityKeyring,
    message: InboundSms,
    reporter: Reporter | None,
    found: Triage,
    now: datetime,
) -> tuple[Tip, str, Question | None]:
    """The first text: the tip at once, with the level the words give, the school they name, and
    the intake's first question."""
    language = commands.guess_language(message.body)
    reading = _read(session, message.body, language, found)
    turn = intake.first_turn(reading)
    school = session.get(School, turn.set_school) if turn.set_school is not None else None
    new = create_tip(
        session,
        keyring,
        channel=Channel.SMS,
        level=found.level,
        tip_type=found.tip_type,
        received_at=now,
        language=language,
        school=school,
        reporter=reporter,
        status=TipStatus.OPEN,
    )
    tip = new.tip
    _add_message(session, tip, message, now, follow_up=False)
    _record_triage(session, tip, found, now)
    session.add(
        SmsIntake(
            tip_id=tip.id,
            step=turn.state.step,
            misses=turn.state.misses,
            offered_school_ids=list(turn.state.offered),
            turn=0,
            updated_at=now,
        )
    )
    _after_turn(session, tip, turn, now)
    return tip, new.pin, _question_of(turn)


def _question_of(turn: intake.Turn) -> Question | None:
    return None if turn.ask is None else Question(turn.ask, turn.state.offered)


def _read(session: Session, text: str, language: str, found: Triage) -> intake.Reading:
    return intake.read_text(
        text,
        schools=_school_index(session),
        language=language,
        critical_words=found.level is TipLevel.CRITICAL or found.negated,
    )


def _school_index(session: Session) -> SchoolIndex:
    """The active schools, read once per webhook (its session) however many texts it reads."""
    cached = session.info.get("sms_school_index")
    if isinstance(cached, SchoolIndex):
        return cached
    rows = session.execute(
        select(School.id, School.name, School.code, School.aliases).where(School.active.is_(True))
    ).all()
    index = SchoolIndex(
        [
            SchoolName(id=r.id, name=r.name, code=r.code, aliases=tuple(r.aliases or ()))
            for r in rows
        ]
    )
    session.info["sms_school_index"] = index
    return index


def _intake_turn(
    session: Session, tip: Tip, message: InboundSms, found: Triage, now: datetime
) -> Question | None:
    """A later text: the intake's next step, if it is still asking. One conditional update per
    turn: of two texts read at once, only one moves the intake on (the other is kept all the
    same, as words)."""
    row = session.get(SmsIntake, tip.id)
    if row is None or row.step in (IntakeStep.DONE, IntakeStep.WITH_AGENT):
        return None
    if not message.body:
        return None  # a picture alone answers no question, and misses none
    state = intake.IntakeState(row.step, row.misses, tuple(row.offered_school_ids))
    reading = _read(session, message.body, tip.language, found)
    told_what = reading.tells_what or _told_what_before(session, tip, message)
    turn = intake.next_turn(state, reading, told_what=told_what)
    moved = session.execute(
        update(SmsIntake)
        .where(SmsIntake.tip_id == tip.id, SmsIntake.turn == row.turn)
        .values(
            step=turn.state.step,
            misses=turn.state.misses,
            offered_school_ids=list(turn.state.offered),
            turn=row.turn + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(moved, "rowcount", 0):
        return None
    session.expire(row)
    _after_turn(session, tip, turn, now)
    return _question_of(turn)


def _told_what_before(session: Session, tip: Tip, message: InboundSms) -> bool:
    """Some earlier text of the tip already says what happens."""
    index = _school_index(session)
    earlier = session.scalars(
        select(TipMessage.body).where(
            TipMessage.tip_id == tip.id,
            TipMessage.direction == MessageDirection.FROM_REPORTER,
        )
    ).all()
    return any(
        intake.read_text(body, schools=index, language=tip.language).tells_what
        for body in earlier
        if body != message.body
    )


def _after_turn(session: Session, tip: Tip, turn: intake.Turn, now: datetime) -> None:
    """What a turn changes on the tip: its school (re-planned), the wait for an answer, the
    timeline, and the agents' feed when the bot gives up."""
    if turn.set_school is not None and turn.set_school != tip.school_id:
        set_school(
            session,
            tip,
            turn.set_school,
            now=now,
            actor_type=ActorType.SYSTEM,
            how=turn.set_school_how or "name",
        )
    asks_school = turn.ask in (intake.Question.SCHOOL, intake.Question.CONFIRM_SCHOOL)
    if asks_school and tip.school_id is None and tip.school_expected_until is None:
        # A Critical tip's duty line waits this long for the answer, no longer.
        tip.school_expected_until = tip.received_at + SCHOOL_ANSWER_WAIT
    if turn.ask is not None:
        timeline.record(
            session,
            tip,
            TipEventKind.INTAKE_HANDED_TO_AGENT
            if turn.handed_to_agent
            else TipEventKind.INTAKE_ASKED,
            at=now,
            question=turn.ask,
            offered=list(turn.state.offered),
        )
    if turn.handed_to_agent:
        _hand_to_agent(session, tip, now)
        _stop_waiting_for_the_school(session, tip, now)


def _hand_to_agent(
    session: Session, tip: Tip, now: datetime, *, why: str = "the text bot stopped asking"
) -> None:
    raise_alert(
        session,
        tip=tip,
        kind=AlertKind.REPORTER_NEEDS_AGENT,
        message=(
            f"Report {tip.report_number}: {why}"
            + ("; the school is still unknown" if tip.school_id is None else "")
            + ". Read the conversation and answer the reporter."
        ),
        key=f"reporter-needs-agent:{tip.id}",
        now=now,
        again=True,
    )


def _stop_waiting_for_the_school(session: Session, tip: Tip, now: datetime) -> None:
    if tip.school_expected_until is not None and tip.school_id is None:
        # Nobody will answer the bot: a Critical tip's duty line must not wait any longer.
        tip.school_expected_until = None
        session.flush()
        if tip.plan_version > 0:
            dispatch.on_tip_changed(session, tip, now)


# Triage ------------------------------------------------------------------------------------------


def _record_triage(session: Session, tip: Tip, found: Triage, now: datetime) -> None:
    """Put what the words say on the timeline and, when an agent must look, on their feed."""
    if not found.matched and not found.negated:
        return
    timeline.record(
        session,
        tip,
        TipEventKind.TIP_TRIAGED,
        at=now,
        level=found.level.value,
        tip_type=found.tip_type,
        matched=list(found.matched),
        negated=list(found.negated_matched),
    )
    if found.level is TipLevel.CRITICAL:
        raise_alert(
            session,
            tip=tip,
            kind=AlertKind.LEVEL_TO_CONFIRM,
            message=(
                f"Report {tip.report_number} was made Critical by its words "
                f"({', '.join(found.matched)}): confirm the level, or lower it."
            ),
            key=f"level-to-confirm:{tip.id}",
            now=now,
            again=True,
        )
    elif found.negated:
        raise_alert(
            session,
            tip=tip,
            kind=AlertKind.THREAT_WORDS_NEGATED,
            message=(
                f"Report {tip.report_number} has threat words said not to be one "
                f"({', '.join(found.negated_matched)}): it stays {tip.level.value} until an "
                "agent decides."
            ),
            key=f"threat-words-negated:{tip.id}",
            now=now,
            again=True,
        )


def _apply_triage(session: Session, tip: Tip, found: Triage, now: datetime) -> None:
    """A later text with Critical words raises the tip (re-planned from its arrival); nothing
    in a text ever lowers it."""
    _record_triage(session, tip, found, now)
    if found.level is TipLevel.CRITICAL and tip.level is not TipLevel.CRITICAL:
        change_classification(
            session,
            tip,
            now=now,
            actor_type=ActorType.SYSTEM,
            actor_id=None,
            tip_type=found.tip_type if found.tip_type else None,
            level=TipLevel.CRITICAL,
        )


# Follow-up by report number and PIN --------------------------------------------------------------


def follow_up(
    session: Session,
    keyring: IdentityKeyring,
    message: InboundSms,
    sender: Sender,
    command: FollowUp,
    now: datetime,
) -> Reply:
    """``TIP <report number> <PIN> <words>``: the words join that report, from any phone, with
    the lockout of a follow-up call. Whether the report exists, the PIN is wrong or the report is
    locked, the answer is the same."""
    language = commands.guess_language(command.words)
    tip = find_tip_for_followup(session, keyring, command.report_number, command.pin, now)
    reporter = (
        find_or_create_reporter(session, keyring, sender.number, now) if sender.number else None
    )
    silent = reporter is None or _opted_out(sender.phone, reporter)
    if tip is None:
        record_followup_failure(session, command.report_number, now, Channel.SMS)
        return Reply.nothing() if silent else Reply(commands.followup_not_found_reply(language))
    record_followup_success(session, tip, now, Channel.SMS)
    if command.words:
        words = replace(message, body=command.words)
        _add_message(session, tip, words, now, follow_up=True)
        _apply_triage(session, tip, triage(command.words), now)
    return Reply.nothing() if silent else Reply(commands.added_reply(tip.report_number, language))


def _reporter_of(session: Session, keyring: IdentityKeyring, sender: Sender) -> Reporter | None:
    return find_reporter(session, keyring, sender.number) if sender.number else None


def conversation_tip(session: Session, reporter: Reporter) -> Tip | None:
    """The reporter's conversation: open until an agent closes its tip. Of several open tips,
    the one that last wrote to the reporter (an agent's reply joins the answer to it); without
    any reply yet, the latest SMS tip."""
    last_reply = (
        select(func.max(TipMessage.created_at))
        .where(
            TipMessage.tip_id == Tip.id,
            TipMessage.direction == MessageDirection.TO_REPORTER,
        )
        .correlate(Tip)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Tip, last_reply.label("last_reply")).where(
            Tip.reporter_id == reporter.id, Tip.status != TipStatus.CLOSED
        )
    ).all()
    replied: list[tuple[datetime, Tip]] = [
        (r.last_reply, r.Tip) for r in rows if r.last_reply is not None
    ]
    if replied:
        return max(replied, key=lambda pair: (pair[0], pair[1].id))[1]
    sms: list[Tip] = [r.Tip for r in rows if r.Tip.channel is Channel.SMS]
    return max(sms, key=lambda t: (t.received_at, t.id)) if sms else None


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
        # One row per item, fetched (and deleted at the provider) by a job after the commit. The
        # timeline names the rows, never the provider's URLs: it is append-only, and the URLs
        # go once the provider's copies do.
        kept = media.keep_media(session, tip, message, message_id, now)
        timeline.record(
            session,
            tip,
            TipEventKind.MESSAGE_MEDIA,
            at=now,
            actor_type=ActorType.REPORTER,
            channel=Channel.SMS.value,
            message_id=message_id,
            message_sid=message.message_sid,
            media=[{"id": row.id, "content_type": row.declared_content_type} for row in kept],
        )
    tip.updated_at = now
    if follow_up:
        dispatch.on_information_added(session, tip, now=now, note="the reporter sent another text")
