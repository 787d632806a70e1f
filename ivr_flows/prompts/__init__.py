"""Voice prompts as data: one TOML catalogue per language, one key per prompt.

A language is added by dropping a catalogue here (and a digit in LANGUAGE_MENU); the test suite
fails while it lacks any prompt. Each catalogue names the ``<Say>`` language and voice used for
every prompt in it, so numbers and school names are read by the same voice as the rest.
"""

from __future__ import annotations

import enum
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


class PromptKey(enum.StrEnum):
    GREETING = "greeting"
    EMERGENCY = "emergency"
    LANGUAGE_OPTION = "language_option"
    MAIN_MENU = "main_menu"
    NOT_UNDERSTOOD = "not_understood"
    NO_INPUT = "no_input"
    CATEGORY_MENU = "category_menu"
    SCHOOL_ASK = "school_ask"
    SCHOOL_CODE_NOT_FOUND = "school_code_not_found"
    SCHOOL_NOT_FOUND = "school_not_found"
    SCHOOL_CONFIRM = "school_confirm"
    SCHOOL_UNKNOWN = "school_unknown"
    RECORD_INSTRUCTIONS = "record_instructions"
    RECORD_RETRY = "record_retry"
    REPORT_RECEIVED = "report_received"
    READBACK = "readback"
    READBACK_WRITE_DOWN = "readback_write_down"
    READBACK_MENU = "readback_menu"
    GOODBYE = "goodbye"
    NO_MESSAGE_GOODBYE = "no_message_goodbye"
    FOLLOWUP_REPORT = "followup_report"
    FOLLOWUP_PIN = "followup_pin"
    FOLLOWUP_NO_MATCH = "followup_no_match"
    FOLLOWUP_LEAVE_MESSAGE = "followup_leave_message"
    MESSAGES_NONE = "messages_none"
    MESSAGES_INTRO = "messages_intro"
    MESSAGE_ITEM = "message_item"
    FOLLOWUP_MENU = "followup_menu"
    FOLLOWUP_RECORD = "followup_record"
    FOLLOWUP_ADDED = "followup_added"
    ERROR_APOLOGY = "error_apology"
    ERROR_THANKS = "error_thanks"
    CONFIRM_ASK = "confirm_ask"
    CONFIRM_NO_MATCH = "confirm_no_match"
    CONFIRM_OTHER_WAYS = "confirm_other_ways"
    CONFIRM_RECORDED = "confirm_recorded"
    CONFIRM_MORE = "confirm_more"
    CONFIRM_GOODBYE = "confirm_goodbye"


#: The keypad language menu: digit → language code. The first is the default when the caller
#: presses nothing.
LANGUAGE_MENU: dict[str, str] = {"1": "en", "2": "es"}
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Catalogue:
    code: str
    name: str
    say_language: str
    voice: str
    speech_language: str
    dont_know: tuple[str, ...]
    prompts: dict[str, str]

    def text(self, key: PromptKey, **params: str) -> str:
        return self.prompts[key.value].format(**params)


class CatalogueError(ValueError):
    pass


def _load(code: str) -> Catalogue:
    raw = resources.files(__package__).joinpath(f"{code}.toml").read_text(encoding="utf-8")
    data = tomllib.loads(raw)
    voice = data.get("voice", {})
    prompts = data.get("prompts", {})
    missing = {k.value for k in PromptKey} - set(prompts)
    extra = set(prompts) - {k.value for k in PromptKey}
    if missing or extra:
        raise CatalogueError(
            f"catalogue {code}: missing {sorted(missing)}, unknown {sorted(extra)}"
        )
    for field in ("name", "say_language", "voice", "speech_language"):
        if not isinstance(voice.get(field), str) or not voice[field]:
            raise CatalogueError(f"catalogue {code}: [voice] {field} is required")
    return Catalogue(
        code=code,
        name=voice["name"],
        say_language=voice["say_language"],
        voice=voice["voice"],
        speech_language=voice["speech_language"],
        dont_know=tuple(str(p).casefold() for p in voice.get("dont_know", [])),
        prompts={str(k): str(v) for k, v in prompts.items()},
    )


@cache
def catalogue(code: str) -> Catalogue:
    if code not in LANGUAGE_MENU.values():
        raise CatalogueError(f"no catalogue for language {code!r}")
    return _load(code)


def all_catalogues() -> list[Catalogue]:
    return [catalogue(code) for code in LANGUAGE_MENU.values()]
