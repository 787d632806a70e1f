"""What an incoming text means, and what the hotline answers: pure functions, no Flask, no database.

A text is one of:

- a carrier keyword (Twilio's list, the whole message trimmed, any case): opt-out (``STOP``...),
  opt-in (``START``, ``YES``, ``UNSTOP``) or help (``HELP``, ``INFO``). Twilio answers these itself
  and still forwards them; they are never menu or confirmation words;
- a confirmation from a contact: ``1 <report number>`` (``1, 1234567``, ``1 #1234567``,
  ``1 123-4567``...). ``1`` alone confirms nothing (a text's sender number proves nothing, the
  report number does): from a contact's number it is answered with how to confirm;
- ``NEW`` (``NUEVO``): the reporter starts a new report instead of adding to the open one;
- ``TIP <report number> <PIN> <words>``: words added to that report, from any phone (the PIN is
  checked as on a follow-up call, with the same lockout);
- anything else: words for the agents, never dropped. Whether a confirmation really is one (the
  sender is a contact) is the service's question; from anyone else ``1 1234567`` and ``1`` are
  just texts (and ``1`` may be a reporter's answer to the intake's "reply 1 if...").

Which reply each case gets is here too; their wording is in ``hotline/wording`` (``[sms]`` for
reporters, in every reporter language; ``[sms_contact]`` for contacts, English only).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from dispatcher.confirm import ConfirmOutcome
from hotline.wording import (
    DEFAULT_LANGUAGE,
    REPORTER_LANGUAGES,
    SmsContactKey,
    SmsKey,
    catalogue,
    staff_text,
)

# Keywords ---------------------------------------------------------------------------------------

OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})


class Keyword(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


#: Twilio's ``OptOutType`` parameter (Advanced Opt-Out, which may have custom keywords): its
#: verdict wins over our own reading of the body.
OPT_OUT_TYPES = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}


# Commands ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeywordCommand:
    keyword: Keyword


@dataclass(frozen=True)
class ConfirmLatest:
    """``1`` alone: a contact trying to confirm without the report number. It confirms nothing
    and is answered with how to confirm."""


@dataclass(frozen=True)
class ConfirmReport:
    """``1 <report number>``: confirm that report. The digits are not checked against the
    report-number format here, so a mistyped number gets a clear refusal rather than turning
    into a tip."""

    report_number: str


@dataclass(frozen=True)
class NewReport:
    """``NEW``: open a new report rather than add to the open conversation."""


@dataclass(frozen=True)
class FollowUp:
    """``TIP <report number> <PIN> <words>``: add ``words`` to that report."""

    report_number: str
    pin: str
    words: str


@dataclass(frozen=True)
class Text:
    """Anything else: words for the agents."""

    body: str


Command = KeywordCommand | ConfirmLatest | ConfirmReport | NewReport | FollowUp | Text

NEW_REPORT_WORDS = frozenset({"new", "new report", "nuevo", "nueva", "nuevo reporte"})
#: ``TIP``, the report number (6-8 digits), the PIN (4-6 digits), then the words (kept as sent).
_FOLLOW_UP_RE = re.compile(
    r"^\s*(?:tip|reporte)\s*[#:]?\s*([0-9]{6,8})\s*[,:;/ ]\s*(?:pin\s*[#:]?\s*)?([0-9]{4,6})\b"
    r"[\s,.:;-]*(.*)$",
    re.IGNORECASE | re.DOTALL,
)

#: ``1``, optionally followed by a report number: separated from the ``1`` by spaces, a comma,
#: a colon, a dash or ``#`` (``11234567`` is not ``1 1234567``: it could be a report number
#: typed alone). Digit groups may be split by a space or a dash. A final ``.`` or ``!`` is fine.
_CONFIRM_RE = re.compile(
    r"^1(?:(?:\s+|\s*[,.:;\-]\s*|\s*#\s*)#?\s*([0-9](?:[ \-]?[0-9]){3,9}))?\s*[.!]?$"
)


def _strip_invisible(text: str) -> str:
    """Drop format characters (zero-width spaces, direction marks) that phones slip in."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalize_command(body: str) -> str:
    """The text as matched against commands: compatibility-normalised (full-width digits and
    letters become ASCII), invisible characters dropped, trimmed, case-folded."""
    return _strip_invisible(unicodedata.normalize("NFKC", body)).strip().casefold()


def keyword_of(body: str, opt_out_type: str = "") -> Keyword | None:
    by_twilio = OPT_OUT_TYPES.get(opt_out_type.strip().upper())
    if by_twilio is not None:
        return by_twilio
    word = normalize_command(body)
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return None


def parse_command(body: str, opt_out_type: str = "") -> Command:
    """What ``body`` asks for. Keywords first: ``YES`` or ``STOP`` is never anything else."""
    keyword = keyword_of(body, opt_out_type)
    if keyword is not None:
        return KeywordCommand(keyword)
    normalized = normalize_command(body)
    if normalized.rstrip(".!") in NEW_REPORT_WORDS:
        return NewReport()
    follow_up = _FOLLOW_UP_RE.match(_strip_invisible(unicodedata.normalize("NFKC", body)))
    if follow_up is not None:
        number, pin, words = follow_up.groups()
        return FollowUp(number, pin, words.strip())
    match = _CONFIRM_RE.match(normalized)
    if match is not None:
        digits = match.group(1)
        if digits is None:
            return ConfirmLatest()
        return ConfirmReport(re.sub(r"[^0-9]", "", digits))
    return Text(body)


# Cleaning what arrives ---------------------------------------------------------------------------

#: Control characters other than tab and newline (NUL cannot even be stored in PostgreSQL).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_body(raw: str) -> str:
    """The words as they are kept: line breaks unified, control characters replaced by spaces,
    lone surrogates (undecodable bytes) replaced, trimmed. Nothing else is cut: the webhook
    guard already refuses requests over 64 KiB, and every word may matter."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_RE.sub(" ", text)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text.strip()


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str | None


#: Twilio sends at most 10 media items per message.
MAX_MEDIA = 10
_CONTENT_TYPE_RE = re.compile(
    r"^[a-z0-9][a-z0-9!#$&^_.+\-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+\-]{0,62}$"
)
_SID_RE = re.compile(r"^(?:SM|MM)[0-9a-fA-F]{32}$")


def parse_media(params: Mapping[str, str]) -> tuple[Media, ...]:
    """``MediaUrl{N}``/``MediaContentType{N}`` for N < 10. ``NumMedia`` is not trusted to say
    how many: every well-formed URL present is kept (fetching it comes later, outside the
    request)."""
    items: list[Media] = []
    for index in range(MAX_MEDIA):
        url = params.get(f"MediaUrl{index}", "").strip()
        if not url.startswith(("https://", "http://")) or len(url) > 500 or _CONTROL_RE.search(url):
            continue
        kind = params.get(f"MediaContentType{index}", "").strip().lower()
        items.append(Media(url, kind if _CONTENT_TYPE_RE.match(kind) else None))
    return tuple(items)


@dataclass(frozen=True)
class InboundSms:
    """An incoming text as the service sees it."""

    #: ``From`` as Twilio sent it (``anonymous``, empty or garbage included); normalised and
    #: hashed by the service, never stored as is.
    sender: str
    body: str
    media: tuple[Media, ...]
    message_sid: str | None
    opt_out_type: str

    @property
    def command(self) -> Command:
        return parse_command(self.body, self.opt_out_type)


def inbound_from_params(params: Mapping[str, str]) -> InboundSms:
    sid = params.get("MessageSid", "") or params.get("SmsSid", "")
    return InboundSms(
        sender=params.get("From", "")[:64],
        body=clean_body(params.get("Body", "")),
        media=parse_media(params),
        message_sid=sid if _SID_RE.match(sid) else None,
        opt_out_type=params.get("OptOutType", "")[:16],
    )


# Language ----------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words that are Spanish and not English (2 points each).
_STRONG_ES = _words(
    """
    hola gracias ayuda escuela colegio pistola arma armas amenaza amenazas bomba alguien
    está esta estoy están hay porque cuando dónde donde qué quién quien mañana hoy miedo
    matar suicidio droga drogas acoso golpe pelea niño niña niños estudiante estudiantes maestro
    maestra profesor profesora dijo quiere tiene tengo también muy pero sí señor señora
    nadie creo eso esto aquí baño salón clase mi mis nuestro hijo hija amigo amiga
    """
)
#: Words common in Spanish that English rarely uses (1 point each).
_WEAK_ES = _words("el la los las del un una es por para con que se su sus al ya como y lo le")
_EN = _words(
    """
    the is are was were to and of he she they at school gun someone will going has have with
    my i you it this that on for be not there said tomorrow today please help hi hello kid
    kids student students teacher threat weapon knife fight bullying about what who where
    when why how his her their bring brought kill hurt
    """
)
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
_SPANISH_LETTERS = frozenset("ñ¿¡áéíóúü")


def guess_language(text: str) -> str:
    """``es`` when the text is clearly Spanish, otherwise ``en`` (best effort: an agent sees
    the words either way and the translation layer comes later)."""
    lowered = text.casefold()
    words = _WORD_RE.findall(lowered)
    spanish = sum(2 if w in _STRONG_ES else 1 if w in _WEAK_ES else 0 for w in words)
    if any(ch in _SPANISH_LETTERS for ch in lowered):
        spanish += 1
    english = sum(1 for w in words if w in _EN)
    return "es" if spanish >= 2 and spanish > english else "en"


# Replies -----------------------------------------------------------------------------------------


def _lang(language: str) -> str:
    """A tip's language when replies exist in it (every language offered to reporters), else
    the default: a reply is never left unsent for want of words."""
    return language if language in REPORTER_LANGUAGES else DEFAULT_LANGUAGE


def _to_reporter(key: SmsKey, language: str, **fields: str) -> str:
    """A reply to a reporter: the text, then 911 and 988 (added here, so no wording edit can
    leave them out)."""
    cat = catalogue(_lang(language))
    return f"{cat.text(key, **fields)} {cat.text(SmsKey.SAFETY)}"


def reporter_reply(worded: str, language: str) -> str:
    """An already-worded answer (the intake's question), then 911 and 988."""
    return f"{worded} {catalogue(_lang(language)).text(SmsKey.SAFETY)}"


def help_reply() -> str:
    """The answer to HELP: the help text of every reporter language, one after the other (the
    keyword says nothing about the sender's language)."""
    return " ".join(catalogue(code).text(SmsKey.HELP) for code in REPORTER_LANGUAGES)


def new_tip_reply(
    report_number: str, pin: str | None, language: str, question: str | None = None
) -> str:
    """The first answer to a new SMS tip: 911 and 988 first (someone in danger reads no
    further), then the report number and PIN (to follow up from any phone), that an agent will
    read it, and the intake's first ``question`` (already worded). Without ``pin``, the report
    number alone."""
    cat = catalogue(_lang(language))
    if pin:
        text = cat.text(SmsKey.NEW_TIP_WITH_PIN, report_number=report_number, pin=pin)
    else:
        text = cat.text(SmsKey.NEW_TIP, report_number=report_number)
    return " ".join(part for part in (cat.text(SmsKey.SAFETY), text, question) if part)


def intake_question(question: str, language: str, offered: list[str] | None = None) -> str:
    """What the intake asks (:class:`sms.intake.Question`), ``offered`` the names of the schools
    it offers, in order."""
    cat = catalogue(_lang(language))
    names = offered or []
    if question == "confirm_school" and len(names) == 1:
        return cat.text(SmsKey.CONFIRM_SCHOOL, school=names[0])
    if question == "confirm_school" and names:
        choices = ", ".join(
            cat.text(SmsKey.SCHOOL_CHOICE, number=str(n), school=name)
            for n, name in enumerate(names, start=1)
        )
        return cat.text(SmsKey.CHOOSE_SCHOOL, choices=choices)
    key = {
        "ask_what": SmsKey.ASK_WHAT,
        "handed_to_agent": SmsKey.HANDED_TO_AGENT,
    }.get(question, SmsKey.ASK_SCHOOL)
    return cat.text(key)


def followup_not_found_reply(language: str) -> str:
    """A ``TIP`` text with a report number and PIN that match nothing open to it: the same
    words whether the report exists, the PIN is wrong or the report is locked."""
    return _to_reporter(SmsKey.FOLLOWUP_NOT_FOUND, language)


def added_reply(report_number: str, language: str) -> str:
    """A further text in the same conversation."""
    return _to_reporter(SmsKey.ADDED, language, report_number=report_number)


def empty_reply(language: str = DEFAULT_LANGUAGE) -> str:
    return _to_reporter(SmsKey.EMPTY, language)


def apology_reply(language: str) -> str:
    """When even keeping the text failed: the sender must still know where to turn."""
    return _to_reporter(SmsKey.APOLOGY, language)


def contact_hint(example: str) -> str:
    """Added to the answer to a contact's text that is not a command."""
    return staff_text(SmsContactKey.HOW_TO_CONFIRM, example=example)


def confirmed_reply(outcome: ConfirmOutcome, report_number: str) -> str:
    """Names only the report number the contact typed: nothing more about the tip."""
    if outcome is ConfirmOutcome.CONFIRMED:
        key = SmsContactKey.CONFIRMED
    elif outcome is ConfirmOutcome.ALREADY:
        key = SmsContactKey.ALREADY_CONFIRMED
    else:
        key = SmsContactKey.RECEIPT_RECORDED
    return staff_text(key, report_number=report_number)


def report_number_needed_reply(example: str) -> str:
    """A contact's bare ``1``: nothing is confirmed, and which reports wait is not said."""
    return staff_text(SmsContactKey.REPORT_NUMBER_NEEDED, example=example)


def not_sent_to_you_reply(report_number: str) -> str:
    """The same words whether the report exists or not."""
    return staff_text(SmsContactKey.NOT_SENT_TO_YOU, report_number=report_number)
