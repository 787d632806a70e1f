"""Loading, checking and looking up the wording: one ``<language>.toml`` beside this module per
language, a ``[voice]`` table and one table per area declared for that language.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from hotline.wording.areas import AREAS, ENGLISH_ONLY, LANGUAGES, area_of, areas_in
from hotline.wording.keys import WordingKey

#: The ``[voice]`` settings every language needs, as non-empty strings.
VOICE_SETTINGS = ("name", "say_language", "voice", "speech_language")


class WordingError(ValueError):
    """A wording file is broken, or the code asked for a text in a way the catalogue does not
    offer (a language the area is not declared for, the wrong placeholders)."""


@dataclass(frozen=True)
class Catalogue:
    """One language: its voice settings and its texts, by area table and key."""

    code: str
    #: The language's own name (as the language menu would say it).
    name: str
    #: ``<Say language=…>`` and ``<Say voice=…>`` for everything said in this language.
    say_language: str
    voice: str
    #: ``<Gather language=…>``: what speech recognition listens for.
    speech_language: str
    #: Said instead of a school name or code by a caller who does not know it (casefolded).
    dont_know: tuple[str, ...]
    texts: Mapping[str, Mapping[str, str]]

    def text(self, key: WordingKey, **fields: str) -> str:
        """The text of ``key`` in this language with its placeholders filled; ``fields`` must
        be exactly the key's placeholders."""
        area = area_of(key)
        if self.code not in area.languages:
            raise WordingError(
                f"[{area.table}] is declared for {', '.join(area.languages)} only "
                f"(hotline/wording/areas.py): there is no {self.code} text for {key.value}"
            )
        if set(fields) != key.fields:
            raise WordingError(
                f"[{area.table}] {key.value} is filled with {sorted(key.fields)}, "
                f"not {sorted(fields)}"
            )
        return self.texts[area.table][key.value].format(**fields)

    def say_options(self) -> dict[str, str]:
        """The keyword arguments of a twilio ``say()`` in this language's voice."""
        return {"language": self.say_language, "voice": self.voice}


@dataclass(frozen=True)
class LanguageReport:
    """What is wrong with one language's file, each entry naming ``[table] key``."""

    code: str
    #: Keys the code has that the file lacks.
    missing: tuple[str, ...] = ()
    #: Texts no code uses: keys the file has and no key enum does, or (added by
    #: :func:`hotline.wording.check.check_all`) enum members no code refers to.
    unused: tuple[str, ...] = ()
    #: Texts whose placeholders are not exactly the ones the code fills.
    placeholders: tuple[str, ...] = ()
    #: Anything else: unreadable TOML, tables that do not belong, empty texts, voice settings.
    other: tuple[str, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        return (
            *(f"missing: {m}" for m in self.missing),
            *(f"unused: {u}" for u in self.unused),
            *(f"placeholders: {p}" for p in self.placeholders),
            *self.other,
        )


@dataclass
class _Findings:
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def report(self, code: str) -> LanguageReport:
        return LanguageReport(
            code,
            tuple(self.missing),
            tuple(self.unused),
            tuple(self.placeholders),
            tuple(self.other),
        )


def placeholders_of(text: str) -> tuple[frozenset[str], list[str]]:
    """The named placeholders of ``text``, and what is wrong with the others: only plain
    ``{name}`` is allowed (no ``{}``, ``{0}``, ``{a.b}``, ``{a[0]}``, ``{a!r}``, ``{a:>5}``)."""
    names: set[str] = set()
    problems: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return frozenset(), [f"{exc} (write {{{{ and }}}} for a literal brace)"]
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            problems.append(f"{{{shown}}} is not a plain {{name}} placeholder")
        else:
            names.add(name)
    return frozenset(names), problems


def _check_voice(raw: Any, found: _Findings) -> None:
    if not isinstance(raw, dict):
        found.other.append("[voice] is missing")
        return
    for name in VOICE_SETTINGS:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            found.other.append(f"[voice] {name} is required (a non-empty string)")
    dont_know = raw.get("dont_know", [])
    if not isinstance(dont_know, list) or not all(isinstance(p, str) for p in dont_know):
        found.other.append("[voice] dont_know is a list of phrases in quotes")
    for name in sorted(set(raw) - {*VOICE_SETTINGS, "dont_know"}):
        found.other.append(f"[voice] {name}: not a voice setting")


def _check_table(table: str, keys: type[WordingKey], raw: Any, found: _Findings) -> None:
    if not isinstance(raw, dict):
        declared = next(a for a in AREAS if a.table == table).languages
        found.missing.extend(f"[{table}] {k.value}" for k in keys)
        found.other.append(f"[{table}] is missing: the area is declared for {', '.join(declared)}")
        return
    known = {k.value: k for k in keys}
    found.missing.extend(f"[{table}] {v}" for v in known if v not in raw)
    for name, text in raw.items():
        key = known.get(name)
        if key is None:
            found.unused.append(f"[{table}] {name} (no {keys.__name__} has it)")
            continue
        if not isinstance(text, str):
            found.other.append(f"[{table}] {name}: a text is a string in quotes")
            continue
        if not text.strip():
            found.other.append(f"[{table}] {name}: empty")
        names, problems = placeholders_of(text)
        found.placeholders.extend(f"[{table}] {name}: {p}" for p in problems)
        if not problems and names != key.fields:
            expected = ", ".join(f"{{{f}}}" for f in sorted(key.fields)) or "none"
            has = ", ".join(f"{{{f}}}" for f in sorted(names)) or "none"
            found.placeholders.append(f"[{table}] {name}: uses {has}; the code fills {expected}")


def check_language(code: str, source: str) -> tuple[LanguageReport, Catalogue | None]:
    """Everything wrong with ``source`` as the file of language ``code``; the catalogue when
    nothing is."""
    found = _Findings()
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        found.other.append(f"not valid TOML: {exc}")
        return found.report(code), None
    _check_voice(data.get("voice"), found)
    own = areas_in(code)
    if not own:
        found.other.append(f"{code} is not a language of any area (hotline/wording/areas.py)")
    for area in own:
        _check_table(area.table, area.keys, data.get(area.table), found)
    tables = {a.table for a in own}
    for name in data:
        if name == "voice" or name in tables:
            continue
        declared = next((a.languages for a in AREAS if a.table == name), None)
        if declared is None:
            found.other.append(f"[{name}]: not an area (hotline/wording/areas.py lists them)")
        else:
            found.other.append(
                f"[{name}] is declared for {', '.join(declared)} only "
                f"(hotline/wording/areas.py): remove it here or declare {code} there"
            )
    report = found.report(code)
    if report.problems:
        return report, None
    voice = data["voice"]
    return report, Catalogue(
        code=code,
        name=voice["name"],
        say_language=voice["say_language"],
        voice=voice["voice"],
        speech_language=voice["speech_language"],
        dont_know=tuple(p.casefold() for p in voice.get("dont_know", [])),
        texts={area.table: dict(data[area.table]) for area in own},
    )


def read_source(code: str) -> str:
    """The text of ``<code>.toml`` as installed beside this module."""
    return resources.files(__package__).joinpath(f"{code}.toml").read_text(encoding="utf-8")


@cache
def catalogue(code: str) -> Catalogue:
    """The checked catalogue of one language; :class:`WordingError` naming every problem when
    its file has any."""
    if code not in LANGUAGES:
        raise WordingError(f"no wording for language {code!r} (hotline/wording/areas.py)")
    report, loaded = check_language(code, read_source(code))
    if loaded is None:
        lines = "\n  ".join(report.problems)
        raise WordingError(f"hotline/wording/{code}.toml:\n  {lines}")
    return loaded


def all_catalogues() -> list[Catalogue]:
    """Every language, checked: what start-up calls, so a broken file stops it."""
    return [catalogue(code) for code in LANGUAGES]


def staff_catalogue() -> Catalogue:
    """The language of the areas read by staff, the PSAP and the police (English today)."""
    return catalogue(ENGLISH_ONLY[0])


def staff_text(key: WordingKey, **fields: str) -> str:
    """A text of an area read by staff, the PSAP or the police. Those areas are declared
    English-only; once one is offered in more languages this refuses it, so each caller says
    which language it needs instead of getting English by default."""
    area = area_of(key)
    if area.languages != ENGLISH_ONLY:
        raise WordingError(
            f"[{area.table}] is offered in {', '.join(area.languages)}: look it up with "
            "catalogue(language).text"
        )
    return staff_catalogue().text(key, **fields)
