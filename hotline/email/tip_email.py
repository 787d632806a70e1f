"""What notification e-mails about a tip say, as text and HTML (their words are the ``[email]``
wording of :mod:`hotline.wording`). Pure: facts in, an :class:`EmailMessage` out.

Notifications carry as little content as is useful (DESIGN.md section 2): what this is, the report
number, the school, the level and what it asks of the reader, the type in plain words, when it
came in (in the district's local time), the portal link where the full tip is read behind a
login, and how to confirm receipt. A short summary of the reporter's words appears only when the
district opted in (``District.email_summary``) and the caller passes it. Nothing about the
reporter is ever part of the facts; phone-number-like strings in a summary are masked anyway.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from hotline.core.clock import ensure_utc
from hotline.core.confirming import VOICE_MENU_KEY
from hotline.core.redaction import redact_text
from hotline.email import EmailMessage
from hotline.models import NotificationPurpose, TipLevel
from hotline.wording import EmailKey, staff_text

#: A summary of the reporter's words is cut to about this many characters.
SUMMARY_LIMIT = 300

#: The categories a reporter picks (keypad menu, SMS intake), in plain words.
CATEGORY_WORDS: dict[str, EmailKey] = {
    "threat": EmailKey.CATEGORY_THREAT,
    "self_harm": EmailKey.CATEGORY_SELF_HARM,
    "bullying": EmailKey.CATEGORY_BULLYING,
    "drugs": EmailKey.CATEGORY_DRUGS,
    "other": EmailKey.CATEGORY_OTHER,
}

#: The level, and what it asks of the reader, in one line.
LEVEL_LINES: dict[TipLevel, EmailKey] = {
    TipLevel.CRITICAL: EmailKey.LEVEL_CRITICAL,
    TipLevel.STANDARD: EmailKey.LEVEL_STANDARD,
    TipLevel.OTHER: EmailKey.LEVEL_OTHER,
}

#: The subject of each kind of notification e-mail.
SUBJECTS: dict[NotificationPurpose, EmailKey] = {
    NotificationPurpose.ALERT: EmailKey.SUBJECT_ALERT,
    NotificationPurpose.UPDATE: EmailKey.SUBJECT_UPDATE,
    NotificationPurpose.ESCALATION: EmailKey.SUBJECT_ESCALATION,
}

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class TipEmailFacts:
    report_number: str
    #: ``critical``, ``standard`` or ``other`` (a TipLevel works too).
    level: str
    #: The tip's type code (``weapon``, ``staff_misconduct``...), None until classified.
    tip_type: str | None
    #: The category the reporter picked (``threat``, ``bullying``...), None if they did not.
    category: str | None
    #: None when the tip names no school yet: "school unknown".
    school_name: str | None
    #: None when there is no school, hence no district, yet.
    district_name: str | None
    #: When the tip reached the hotline, timezone-aware.
    received_at: datetime
    #: The district's time zone (IANA name or ZoneInfo), for ``received_at`` in local time.
    district_timezone: ZoneInfo | str
    #: Where the full tip is read, behind a login.
    portal_url: str
    #: ``alert``, ``update`` or ``escalation`` (a NotificationPurpose works too).
    purpose: str = "alert"
    #: Only when the district opted in (``District.email_summary``): the reporter's words.
    summary: str | None = None
    #: What is new, for an update ("a new recording was added").
    update_note: str | None = None
    #: Why this escalation ("nobody at the school confirmed within 20 minutes").
    escalation_note: str | None = None
    #: The hotline's number, where "1 <report number>" can be texted to confirm (or the
    #: report number keyed in after calling it).
    hotline_number: str | None = None
    #: The type in plain words (``dispatcher.levels.describe_type``); without it ``tip_type``
    #: is shown with its underscores as spaces.
    type_description: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", TipLevel(self.level))
        object.__setattr__(self, "purpose", NotificationPurpose(self.purpose))
        object.__setattr__(self, "received_at", ensure_utc(self.received_at))
        if not self.report_number.isdigit():
            raise ValueError("a report number is digits only")
        if not isinstance(self.district_timezone, ZoneInfo):
            try:
                object.__setattr__(self, "district_timezone", ZoneInfo(self.district_timezone))
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {self.district_timezone!r}") from exc
        if urlsplit(self.portal_url).scheme not in ("http", "https"):
            raise ValueError("the portal URL must be http(s)")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def shorten_summary(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """The reporter's words on one line, phone numbers masked, cut near ``limit`` characters
    at a word boundary with an ellipsis."""
    text = _one_line(redact_text(text))
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space >= limit * 2 // 3:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def format_local_time(when: datetime, timezone: ZoneInfo | str) -> str:
    """``Sunday, March 8, 2026 at 1:30 AM CST``, in English whatever the process locale."""
    zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    local = ensure_utc(when).astimezone(zone)
    hour = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return (
        f"{_DAYS[local.weekday()]}, {_MONTHS[local.month - 1]} {local.day}, {local.year} "
        f"at {hour}:{local.minute:02d} {half} {local.tzname()}"
    )


def format_hotline_number(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def describe_about(facts: TipEmailFacts) -> str:
    if facts.type_description:
        return _one_line(facts.type_description)
    if facts.tip_type:
        return _one_line(facts.tip_type.replace("_", " "))
    if facts.category:
        key = CATEGORY_WORDS.get(facts.category)
        words = staff_text(key) if key else facts.category.replace("_", " ")
        return staff_text(EmailKey.ABOUT_REPORTER_CATEGORY, category=words)
    return staff_text(EmailKey.ABOUT_UNCLASSIFIED)


def subject_for(facts: TipEmailFacts) -> str:
    school = (
        _one_line(facts.school_name)
        if facts.school_name
        else staff_text(EmailKey.SUBJECT_SCHOOL_UNKNOWN)
    )
    return staff_text(
        SUBJECTS[NotificationPurpose(facts.purpose)],
        level=facts.level.upper(),
        report_number=facts.report_number,
        school=school,
    )


def _opening(facts: TipEmailFacts) -> str:
    about = (
        staff_text(EmailKey.ABOUT_SCHOOL, school=_one_line(facts.school_name))
        if facts.school_name
        else staff_text(EmailKey.ABOUT_NO_SCHOOL)
    )
    purpose = NotificationPurpose(facts.purpose)
    if purpose is NotificationPurpose.UPDATE:
        note = (
            _one_line(facts.update_note)
            if facts.update_note
            else staff_text(EmailKey.UPDATE_NOTE_DEFAULT)
        )
        return staff_text(EmailKey.OPENING_UPDATE, about=about, note=note)
    if purpose is NotificationPurpose.ESCALATION:
        text = staff_text(EmailKey.OPENING_ESCALATION, about=about)
        if facts.escalation_note:
            text += f" {_one_line(facts.escalation_note)}"
        return text
    if facts.district_name:
        return staff_text(
            EmailKey.OPENING_ALERT_DISTRICT, district=_one_line(facts.district_name), about=about
        )
    return staff_text(EmailKey.OPENING_ALERT, about=about)


#: Stands in for markup while a sentence is HTML-escaped (no text holds a NUL).
_MARK = "\0"


def _html_text(key: EmailKey, markup: dict[str, str], **fields: str) -> str:
    """The text of ``key`` HTML-escaped, with the placeholders in ``markup`` filled with markup
    (already escaped where it needs to be) and ``fields`` with plain text."""
    marks = {name: f"{_MARK}{name}{_MARK}" for name in markup}
    escaped = html.escape(staff_text(key, **fields, **marks))
    for name, value in markup.items():
        escaped = escaped.replace(marks[name], value)
    return escaped


def _confirm_line(facts: TipEmailFacts, *, as_html: bool) -> str:
    """How to confirm receipt; the text to send is in quotes in plain text, in bold in HTML."""
    to = (
        format_hotline_number(facts.hotline_number)
        if facts.hotline_number
        else staff_text(EmailKey.HOTLINE_NUMBER_UNKNOWN)
    )
    code = f"1 {facts.report_number}"
    if as_html:
        return _html_text(
            EmailKey.HOW_TO_CONFIRM,
            {"code": f"<strong>{html.escape(code)}</strong>"},
            to=to,
            menu_key=VOICE_MENU_KEY,
        )
    return staff_text(EmailKey.HOW_TO_CONFIRM, code=f'"{code}"', to=to, menu_key=VOICE_MENU_KEY)


def render_tip_email(facts: TipEmailFacts, to: str | Sequence[str]) -> EmailMessage:
    recipients = (to,) if isinstance(to, str) else tuple(to)
    school = (
        _one_line(facts.school_name)
        if facts.school_name
        else staff_text(EmailKey.FIELD_SCHOOL_UNKNOWN)
    )
    fields = [
        (staff_text(EmailKey.FIELD_REPORT_NUMBER), facts.report_number),
        (staff_text(EmailKey.FIELD_SCHOOL), school),
        (staff_text(EmailKey.FIELD_LEVEL), staff_text(LEVEL_LINES[TipLevel(facts.level)])),
        (staff_text(EmailKey.FIELD_ABOUT), describe_about(facts)),
        (
            staff_text(EmailKey.FIELD_RECEIVED),
            format_local_time(facts.received_at, facts.district_timezone),
        ),
    ]
    summary = shorten_summary(facts.summary) if facts.summary else ""
    summary_label = staff_text(EmailKey.SUMMARY_LABEL)
    opening = _opening(facts)
    footer = staff_text(EmailKey.FOOTER)

    text_lines = [opening, ""]
    text_lines += [f"{name}: {value}" for name, value in fields]
    text_lines += [
        "",
        staff_text(EmailKey.PORTAL_HEADING),
        facts.portal_url,
        "",
        _confirm_line(facts, as_html=False),
    ]
    if summary:
        text_lines += ["", f'{summary_label} "{summary}"']
    text_lines += ["", footer, ""]

    e = html.escape
    rows = "".join(
        f'<tr><th align="left" valign="top">{e(name)}</th><td>{e(value)}</td></tr>'
        for name, value in fields
    )
    link = f'<a href="{e(facts.portal_url)}">{e(staff_text(EmailKey.PORTAL_LINK))}</a>'
    portal_line = _html_text(EmailKey.PORTAL_LINK_NOTE, {"link": link})
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"></head><body>',
        f"<p>{e(opening)}</p>",
        f"<table>{rows}</table>",
        f"<p>{portal_line}</p>",
        f"<p>{_confirm_line(facts, as_html=True)}</p>",
    ]
    if summary:
        parts.append(f"<p>{e(summary_label)}</p><blockquote>{e(summary)}</blockquote>")
    parts += [f"<p><small>{e(footer)}</small></p>", "</body></html>", ""]

    return EmailMessage(
        to=recipients,
        subject=subject_for(facts),
        text="\n".join(text_lines),
        html="\n".join(parts),
        headers={
            # RFC 3834: an automatic message; out-of-office replies should not answer it.
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
        },
    )
