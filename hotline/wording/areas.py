"""Which languages the hotline speaks, and in which of them each area of the wording exists.

Reporter-facing areas exist in every language offered to reporters. The areas read by school
staff, the PSAP and the police are declared English-only: the loader refuses a file that leaves
an area out of a language it is declared for or adds it to another, and asking for such a text
in another language is an error, never a quiet fallback to English.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.wording.keys import (
    AlertCallKey,
    AlertTextKey,
    EmailKey,
    PromptKey,
    SmsContactKey,
    SmsKey,
    TipTypeKey,
    WordingKey,
)

#: The keypad language menu: digit → language code, in the order it is read. Every language
#: here is offered to reporters (by voice and by text) and needs its ``<code>.toml``.
LANGUAGE_MENU: dict[str, str] = {"1": "en", "2": "es"}
#: The first language of the menu: the greeting's, and the caller's when they press nothing.
DEFAULT_LANGUAGE = "en"
REPORTER_LANGUAGES: tuple[str, ...] = tuple(LANGUAGE_MENU.values())

#: Staff, the PSAP and the police get English today; translating their areas is a later issue.
ENGLISH_ONLY: tuple[str, ...] = ("en",)


@dataclass(frozen=True)
class Area:
    #: The TOML table holding the area's texts in each language file.
    table: str
    keys: type[WordingKey]
    #: The languages the area is complete in (and the only ones it may appear in).
    languages: tuple[str, ...]
    #: Who hears or reads it, for the documentation and error messages.
    audience: str


AREAS: tuple[Area, ...] = (
    Area("ivr", PromptKey, REPORTER_LANGUAGES, "callers to the hotline (the voice menu)"),
    Area("sms", SmsKey, REPORTER_LANGUAGES, "people who text the hotline"),
    Area("sms_contact", SmsContactKey, ENGLISH_ONLY, "school contacts texting to confirm"),
    Area("alert_call", AlertCallKey, ENGLISH_ONLY, "contacts called about a tip"),
    Area("alert_text", AlertTextKey, ENGLISH_ONLY, "contacts texted about a tip"),
    Area("email", EmailKey, ENGLISH_ONLY, "contacts e-mailed about a tip"),
    Area("tip_type", TipTypeKey, ENGLISH_ONLY, "contacts, on alert calls and in e-mails"),
)

#: Every language with a catalogue file.
LANGUAGES: tuple[str, ...] = tuple(dict.fromkeys(code for area in AREAS for code in area.languages))

_AREA_OF_KEYS: dict[type[WordingKey], Area] = {area.keys: area for area in AREAS}


def area_of(key: WordingKey) -> Area:
    return _AREA_OF_KEYS[type(key)]


def areas_in(code: str) -> tuple[Area, ...]:
    """The areas a language's file must hold (and the only ones it may)."""
    return tuple(area for area in AREAS if code in area.languages)
