"""What notification e-mails about a tip say. Pure: facts in, an :class:`EmailMessage` out.

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

#: A summary of the reporter's words is cut to about this many characters.
SUMMARY_LIMIT = 300

#: The categories a reporter picks (keypad menu, SMS intake), in plain words.
CATEGORY_WORDS: dict[str, str] = {
    "threat": "violence, a weapon or a planned attack",
    "self_harm": "someone who may hurt themselves",
    "bullying": "bullying, harassment or discrimination",
    "drugs": "drugs, alcohol or vaping",
    "other": "something else",
}

#: The level, and what it asks of the reader, in one line.
LEVEL_LINES: dict[TipLevel, str] = {
    TipLevel.CRITICAL: (
        "Critical \N{EN DASH} possible danger to someone's life or safety. Please read it now; "
        "the hotline alerts every contact within 20 minutes, at any hour."
    ),
    TipLevel.STANDARD: (
        "Standard \N{EN DASH} please read it and act on it within 1 hour of business time."
    ),
    TipLevel.OTHER: "Other \N{EN DASH} please read it within 4 hours of business time.",
}

#: Reminders added to every e-mail, in the same order in text and HTML.
FOOTER = (
    "The reporter is anonymous. This e-mail carries as little as possible on purpose: the full "
    "tip, the anonymous conversation with the reporter and the place to record what was done "
    "are on the portal. Please do not forward this e-mail."
)

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
        words = CATEGORY_WORDS.get(facts.category, facts.category.replace("_", " "))
        return f"{words} (as the reporter chose it; not classified yet)"
    return "not classified yet"


def subject_for(facts: TipEmailFacts) -> str:
    level = f"[{facts.level.upper()}]"
    school = _one_line(facts.school_name) if facts.school_name else "school unknown"
    prefix = {
        NotificationPurpose.ALERT: level,
        NotificationPurpose.UPDATE: f"[UPDATE] {level}",
        NotificationPurpose.ESCALATION: f"[NOT CONFIRMED] {level}",
    }[NotificationPurpose(facts.purpose)]
    return f"{prefix} Safety tip {facts.report_number} \N{EN DASH} {school}"


def _opening(facts: TipEmailFacts) -> str:
    about = (
        f"about {_one_line(facts.school_name)}"
        if facts.school_name
        else "(the school is not known yet)"
    )
    purpose = NotificationPurpose(facts.purpose)
    if purpose is NotificationPurpose.UPDATE:
        note = _one_line(facts.update_note) if facts.update_note else "the tip was updated"
        return f"There is new information on an anonymous safety tip {about}: {note}."
    if purpose is NotificationPurpose.ESCALATION:
        text = f"Nobody has confirmed receipt of an anonymous safety tip {about} yet."
        if facts.escalation_note:
            text += f" {_one_line(facts.escalation_note)}"
        return text
    hotline = (
        f"The school-safety hotline of {_one_line(facts.district_name)}"
        if facts.district_name
        else "The school-safety hotline"
    )
    return f"{hotline} received an anonymous safety tip {about}."


def _confirm_line(facts: TipEmailFacts) -> tuple[str, str, str]:
    """How to confirm receipt, as (before, the text to send, after) for both renderings."""
    to = (
        format_hotline_number(facts.hotline_number)
        if facts.hotline_number
        else "the hotline's number"
    )
    return (
        "Please confirm you received it: press 1 when the hotline calls you, text",
        f"1 {facts.report_number}",
        f"to {to}, or call {to}, choose your language, press {VOICE_MENU_KEY} and key in the "
        "report number, or open the tip on the portal.",
    )


def render_tip_email(facts: TipEmailFacts, to: str | Sequence[str]) -> EmailMessage:
    recipients = (to,) if isinstance(to, str) else tuple(to)
    school = _one_line(facts.school_name) if facts.school_name else "unknown"
    fields = [
        ("Report number", facts.report_number),
        ("School", school),
        ("Level", LEVEL_LINES[TipLevel(facts.level)]),
        ("About", describe_about(facts)),
        ("Received", format_local_time(facts.received_at, facts.district_timezone)),
    ]
    summary = shorten_summary(facts.summary) if facts.summary else ""
    opening = _opening(facts)
    before, code, after = _confirm_line(facts)

    text_lines = [opening, ""]
    text_lines += [f"{name}: {value}" for name, value in fields]
    text_lines += [
        "",
        "Read the full tip on the portal (login required):",
        facts.portal_url,
        "",
        f'{before} "{code}" {after}',
    ]
    if summary:
        text_lines += ["", f'What the reporter said (shortened): "{summary}"']
    text_lines += ["", FOOTER, ""]

    e = html.escape
    rows = "".join(
        f'<tr><th align="left" valign="top">{e(name)}</th><td>{e(value)}</td></tr>'
        for name, value in fields
    )
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"></head><body>',
        f"<p>{e(opening)}</p>",
        f"<table>{rows}</table>",
        f'<p><a href="{e(facts.portal_url)}">Read the full tip on the portal</a> '
        f"(login required).</p>",
        f"<p>{e(before)} <strong>{e(code)}</strong> {e(after)}</p>",
    ]
    if summary:
        parts.append(
            f"<p>What the reporter said (shortened):</p><blockquote>{e(summary)}</blockquote>"
        )
    parts += [f"<p><small>{e(FOOTER)}</small></p>", "</body></html>", ""]

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
