"""Which texts are Critical candidates: a pure reading of a text's words against the word lists
in ``sms/triage.toml`` (data an operator edits; its header says how, ``docs/triage.md`` why).

Every text a reporter sends, the first and each later one, can be read here: :func:`triage`
says whether its words make it a Critical candidate, of which tip type, which list entries
matched (for the agent's timeline: never the text itself), and whether an agent must look. It
is a candidate only: an agent confirms or changes the level. No Flask, no database, no I/O but
reading the data file once, on first use. ``python -m sms.triage ["a text"...]`` checks the
file after an edit and shows how texts are read.

How a text is read:

- folded: NFKC, invisible characters dropped, case-folded, accents stripped (``Mañana`` is
  ``manana``), apostrophes dropped (``isn't`` is ``isnt``);
- cut into words (letters and digits; an emoji is a word of its own), clauses (``, : …``) and
  sentences (``. ! ? ;`` and line breaks); other punctuation only separates words;
- a word matches an entry word ignoring doubled letters (``gunnnn`` is ``gun``, ``kil`` is
  ``kill``) and a plural ending (``guns``, ``armas``, ``bullies``); never inside a longer word
  (``skill`` is not ``kill``).

Every list is read whatever the text's language (:func:`sms.commands.guess_language` is a best
effort and students mix languages): the entries are few enough that one language's lists
rarely fire on another's words, and a miss costs more than an agent's minute on a stray match.
"""

from __future__ import annotations

import difflib
import re
import sys
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from dispatcher.levels import TIP_TYPES
from hotline.models import TipLevel

#: The word lists, beside this module (declared as package data in pyproject.toml).
DATA_FILE = "triage.toml"
#: How far after a Critical word a ``[negation.after]`` phrase may start ("gun" but it's "just a
#: toy"): farther, it is more likely about something else than the word.
AFTER_REACH = 5
#: The fewest letters before a ``*`` in an entry: a shorter prefix matches too many words.
MIN_PREFIX = 3


class TriageDataError(ValueError):
    """The word lists are broken; the message names every problem and its table."""


@dataclass(frozen=True)
class Triage:
    """What a text's words say. ``tip_type`` is None or of level ``level``, so a caller setting
    both never makes a Critical type Standard or the reverse."""

    #: CRITICAL for a Critical candidate, else STANDARD.
    level: TipLevel
    #: A key of :data:`dispatcher.levels.TIP_TYPES` when the words say which, else None.
    tip_type: str | None
    #: The entries that matched and count, as written in the lists (``"gun"``, ``"shoot up"``;
    #: of an entry's ``|`` choices, the one that matched), in the order of the text, then the
    #: time of a Critical text (``"tomorrow+threat"``). Never the text's own words.
    matched: tuple[str, ...]
    #: The Critical entries that matched but were negated (``"gun"`` in "not a gun").
    negated_matched: tuple[str, ...]
    #: An agent must look: a Critical candidate (to confirm its level) or a negated one (so a
    #: text is never lowered to Standard silently).
    needs_review: bool

    @property
    def negated(self) -> bool:
        """Critical words were there but negated ("not a gun, just a toy", "no es un arma")."""
        return bool(self.negated_matched)


# Reading a text ---------------------------------------------------------------------------------

_APOSTROPHES_RE = re.compile("['\u2018\u2019\u02bc`\u00b4]")
_SENTENCE_BREAKS = frozenset(".!?;\n¡¿")
_CLAUSE_BREAKS = frozenset(",:…")
_PIECE_RE = re.compile(r"(?P<word>[^\W_]+)|(?P<mark>\n|\S)")
_REPEATS_RE = re.compile(r"(.)\1+")
#: After ``-es`` is dropped, the endings of a word that takes ``-es`` in the plural (English
#: boxes, matches; Spanish fusiles, municiones); elsewhere "gates" would become "gat".
_ES_PLURAL_STEMS = ("s", "x", "z", "ch", "sh", "r", "l", "n", "d")


def _lower(text: str) -> str:
    """``text`` compatibility-normalised, invisible characters dropped, case-folded, every
    apostrophe made ``'``: how an entry is shown ("he'll shoot")."""
    # Before NFKC too: it turns an acute accent used as an apostrophe (U+00B4) into a space
    # and a combining accent.
    text = unicodedata.normalize("NFKC", _APOSTROPHES_RE.sub("'", text))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFC", _APOSTROPHES_RE.sub("'", text.casefold()))


def fold(text: str) -> str:
    """``text`` as it is matched: :func:`_lower`, then apostrophes dropped ("isn't" is "isnt")
    and accents stripped ("mañana" is "manana")."""
    decomposed = unicodedata.normalize("NFD", _lower(text).replace("'", ""))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", bare)


def squeeze(word: str) -> str:
    """``word`` with every run of one letter made one: "gunnnn", "gunn" and "gun" are "gun"."""
    return _REPEATS_RE.sub(r"\1", word)


def _singulars(word: str) -> frozenset[str]:
    """``word`` (squeezed) and what it would be without a plural ending."""
    forms = {word}
    if len(word) > 3 and word.endswith("s"):
        forms.add(word[:-1])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
        if word.endswith("es") and word[:-2].endswith(_ES_PLURAL_STEMS):
            forms.add(word[:-2])
    return frozenset(forms)


@dataclass(frozen=True)
class _Token:
    squeezed: str
    forms: frozenset[str]
    clause: int
    sentence: int


def _is_symbol(mark: str) -> bool:
    """An emoji or another pictograph: a word of its own ("🔫")."""
    return unicodedata.category(mark) == "So"


def _is_word_char(ch: str) -> bool:
    """A letter, a digit or an accent on one."""
    return ch.isalnum() or unicodedata.combining(ch) != 0


def tokens_of(text: str) -> list[_Token]:
    """The words of ``text``, each with its clause and sentence."""
    tokens: list[_Token] = []
    clause = sentence = 0
    for piece in _PIECE_RE.finditer(fold(text)):
        found = piece.group()
        if found in _SENTENCE_BREAKS:
            clause, sentence = clause + 1, sentence + 1
        elif found in _CLAUSE_BREAKS:
            clause += 1
        elif piece.group("word") is not None or _is_symbol(found):
            squeezed = squeeze(found)
            tokens.append(_Token(squeezed, _singulars(squeezed), clause, sentence))
    return tokens


# Entries ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Choice:
    """One word an entry accepts at one place: as written (lower-cased, accents kept) and as
    matched (folded, squeezed), exactly or as the start of a word."""

    written: str
    key: str
    prefix: bool

    def matches(self, token: _Token) -> bool:
        return token.squeezed.startswith(self.key) if self.prefix else self.key in token.forms


@dataclass(frozen=True)
class _Word:
    """One place of an entry: the words accepted there."""

    choices: tuple[_Choice, ...]

    def matches(self, token: _Token) -> bool:
        return any(choice.matches(token) for choice in self.choices)

    def shown(self, token: _Token) -> str:
        """The choice ``token`` matched, as written."""
        return next(c.written for c in self.choices if c.matches(token))


@dataclass(frozen=True)
class Entry:
    """One entry of a list: its text as written and its words."""

    text: str
    words: tuple[_Word, ...]


@dataclass(frozen=True)
class _Hit:
    entry: Entry
    start: int
    #: Exclusive.
    end: int
    #: The entry's choices that matched, as written: what :attr:`Triage.matched` shows ("drive
    #: into a tree" for "drive|crash into a|the tree|wall"), never the text's own words.
    shown: str


def parse_entry(raw: str) -> Entry:
    """The entry written ``raw``; :class:`ValueError` saying what is wrong with it."""
    lowered = _lower(raw)
    if not lowered.strip():
        raise ValueError("empty")
    breaks = sorted({ch for ch in lowered if ch in _SENTENCE_BREAKS | _CLAUSE_BREAKS})
    if breaks:
        raise ValueError(
            f"holds {' '.join(repr(ch) for ch in breaks)}: a text's phrases never run across "
            "them, so the entry could never match"
        )
    # Punctuation inside an entry separates words, as in a text ("ar-15" is "ar 15").
    spaced = "".join(
        ch if ch.isspace() or ch in "|*'" or _is_word_char(ch) or _is_symbol(ch) else " "
        for ch in lowered
    )
    words: list[_Word] = []
    for place in spaced.split():
        choices: list[_Choice] = []
        for alternative in place.split("|"):
            prefix = alternative.endswith("*")
            word = fold(alternative.removesuffix("*"))
            if not word:
                raise ValueError(f"{place!r}: an empty choice between | (or a lone *)")
            if "*" in word or not (word.isalnum() or (len(word) == 1 and _is_symbol(word))):
                raise ValueError(f"{alternative!r} is not one word (a * goes at a word's end)")
            key = squeeze(word)
            if prefix and len(key) < MIN_PREFIX:
                raise ValueError(
                    f"{alternative!r}: at least {MIN_PREFIX} letters before * (it would match "
                    "too many words)"
                )
            choices.append(_Choice(alternative, key, prefix))
        words.append(_Word(tuple(choices)))
    if not words:
        raise ValueError("has no words")
    return Entry(raw, tuple(words))


class EntryList:
    """A list of entries, found in a text's tokens by their first word."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = tuple(entries)
        self._by_first: dict[str, list[Entry]] = {}
        self._by_prefix: list[Entry] = []
        for entry in self.entries:
            first = entry.words[0].choices
            for key in {c.key for c in first if not c.prefix}:
                self._by_first.setdefault(key, []).append(entry)
            if any(c.prefix for c in first):
                self._by_prefix.append(entry)

    def _starting(self, token: _Token) -> list[Entry]:
        candidates = [e for form in token.forms for e in self._by_first.get(form, ())]
        candidates += [e for e in self._by_prefix if e.words[0].matches(token)]
        return list(dict.fromkeys(candidates))

    def find(self, tokens: Sequence[_Token]) -> list[_Hit]:
        """Every place an entry matches, each within one clause."""
        hits: list[_Hit] = []
        for start, token in enumerate(tokens):
            for entry in self._starting(token):
                end = start + len(entry.words)
                if end > len(tokens) or tokens[end - 1].clause != token.clause:
                    continue
                span = tokens[start:end]
                if all(w.matches(t) for w, t in zip(entry.words[1:], span[1:], strict=True)):
                    shown = " ".join(w.shown(t) for w, t in zip(entry.words, span, strict=True))
                    hits.append(_Hit(entry, start, end, shown))
        return hits

    def matches_word(self, token: _Token) -> bool:
        """Whether a one-word entry is ``token``."""
        return any(len(e.words) == 1 for e in self._starting(token))


# The lists --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeList:
    """The entries of one tip type."""

    tip_type: str
    level: TipLevel
    #: Whether a negation ("not a gun") takes a match away; False for self-harm.
    negatable: bool
    entries: EntryList


@dataclass(frozen=True)
class WordLists:
    """The checked contents of a word-list file."""

    #: In the file's order, which is the order of precedence for the tip type.
    types: tuple[TypeList, ...]
    imminence: EntryList
    negation_before: EntryList
    negation_between: EntryList
    negation_after: EntryList
    harmless: EntryList

    def triage(self, text: str) -> Triage:
        """What ``text``'s words say (see :func:`triage`)."""
        tokens = tokens_of(text)
        harmless = [(h.start, h.end) for h in self.harmless.find(tokens)]
        before_ends = {h.end - 1 for h in self.negation_before.find(tokens)}
        after_starts = {
            h.start
            for h in self.negation_after.find(tokens)
            # "no es de juguete" says it is real: a negated negation negates nothing.
            if not self._follows_negation(h.start, tokens, before_ends)
        }
        counted: list[tuple[_Hit, TypeList]] = []
        negated: list[_Hit] = []
        for kind in self.types:
            for hit in kind.entries.find(tokens):
                # Sharing a word is enough: "they are shooting hoops" is not "are shooting".
                if any(hit.start < end and start < hit.end for start, end in harmless):
                    continue
                if (
                    kind.level is TipLevel.CRITICAL
                    and kind.negatable
                    and self._is_negated(hit, tokens, before_ends, after_starts)
                ):
                    negated.append(hit)
                else:
                    counted.append((hit, kind))
        critical = {kind.tip_type for _, kind in counted if kind.level is TipLevel.CRITICAL}
        found = critical or {kind.tip_type for _, kind in counted}
        tip_type = next((k.tip_type for k in self.types if k.tip_type in found), None)
        matched = _texts(hit for hit, _ in counted)
        if critical:
            matched += tuple(f"{t}+threat" for t in _texts(self.imminence.find(tokens)))
        level = TipLevel.CRITICAL if critical else TipLevel.STANDARD
        return Triage(
            level=level,
            tip_type=tip_type,
            matched=matched,
            negated_matched=_texts(negated),
            needs_review=level is TipLevel.CRITICAL or bool(negated),
        )

    def _follows_negation(
        self, index: int, tokens: Sequence[_Token], before_ends: set[int]
    ) -> bool:
        """Whether a ``[negation.before]`` phrase ends just before ``tokens[index]``, with only
        ``[negation.between]`` words in the gap, in the same clause."""
        position = index - 1
        while position >= 0 and tokens[position].clause == tokens[index].clause:
            if position in before_ends:
                return True
            if not self.negation_between.matches_word(tokens[position]):
                return False
            position -= 1
        return False

    def _is_negated(
        self, hit: _Hit, tokens: Sequence[_Token], before_ends: set[int], after_starts: set[int]
    ) -> bool:
        if self._follows_negation(hit.start, tokens, before_ends):
            return True
        sentence = tokens[hit.end - 1].sentence
        reach = range(hit.end, min(hit.end + AFTER_REACH + 1, len(tokens)))
        return any(i in after_starts and tokens[i].sentence == sentence for i in reach)


def _texts(hits: Iterable[_Hit]) -> tuple[str, ...]:
    """What the hits show, in the order of the text, each once."""
    ordered = sorted(hits, key=lambda h: (h.start, h.end))
    return tuple(dict.fromkeys(h.shown for h in ordered))


# Loading and checking ---------------------------------------------------------------------------

_LANGUAGE_RE = re.compile(r"^(?:[a-z]{2,3}|any)$")
_NEGATION_PARTS = ("before", "between", "after")
_TABLES = "[imminence], [negation.before|between|after], [harmless] and [types.<tip type>]"


def _entries_of(
    table: str, raw: Any, problems: list[str], *, settings: Iterable[str] = ()
) -> list[Entry]:
    """The entries of every language list of ``raw`` (the table ``[table]``), adding what is
    wrong with them to ``problems``."""
    if not isinstance(raw, dict):
        problems.append(f"[{table}] is missing (or not a table)")
        return []
    entries: list[Entry] = []
    languages = [name for name in raw if name not in settings]
    if not languages:
        problems.append(f"[{table}]: no list of words (en = [...], es = [...])")
    for name in languages:
        value = raw[name]
        where = f"[{table}] {name}"
        if not _LANGUAGE_RE.match(name):
            problems.append(f"{where}: not a language code (en, es...) or any")
            continue
        if not isinstance(value, list):
            problems.append(f"{where}: a list of words in quotes, in [ ]")
            continue
        if not value:
            problems.append(f"{where}: empty list (add words or remove the line)")
        for item in value:
            if not isinstance(item, str):
                problems.append(f"{where}: {item!r} is not a word in quotes")
                continue
            try:
                entries.append(parse_entry(item))
            except ValueError as exc:
                problems.append(f"{where}: {item!r}: {exc}")
    return entries


def _type_lists(raw: Any, problems: list[str]) -> list[TypeList]:
    if not isinstance(raw, dict) or not raw:
        problems.append("[types.<tip type>]: no tip type has words")
        return []
    kinds: list[TypeList] = []
    for name, table in raw.items():
        where = f"types.{name}"
        if name not in TIP_TYPES:
            close = difflib.get_close_matches(name, TIP_TYPES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(
                f"[{where}]: unknown tip type {name!r}{hint}: dispatcher/levels.py's TIP_TYPES "
                "lists them"
            )
            continue
        level = TIP_TYPES[name][0]
        if level not in (TipLevel.CRITICAL, TipLevel.STANDARD):
            problems.append(
                f"[{where}]: {name} is of level {level.value} (dispatcher/levels.py); triage "
                "tells Critical from Standard only"
            )
            continue
        negatable = table.get("negatable", True) if isinstance(table, dict) else True
        if not isinstance(negatable, bool):
            problems.append(f"[{where}] negatable: true or false")
        elif isinstance(table, dict) and "negatable" in table and level is not TipLevel.CRITICAL:
            problems.append(f"[{where}] negatable: only a Critical type's words are negated")
        entries = _entries_of(where, table, problems, settings=("negatable",))
        kinds.append(TypeList(name, level, negatable is not False, EntryList(entries)))
    if kinds and kinds[0].tip_type != "self_harm":
        problems.append(
            "[types.self_harm] must be the first type: a person who may hurt themselves is the "
            "tip's type whatever else the text says (\"I'm going to shoot myself\")"
        )
    if kinds and not any(k.level is TipLevel.CRITICAL for k in kinds):
        problems.append("[types.<tip type>]: no Critical type")
    return kinds


def load_word_lists(source: str, origin: str = f"sms/{DATA_FILE}") -> WordLists:
    """The checked word lists written ``source``; :class:`TriageDataError` naming every problem
    (``origin`` says where the text came from)."""
    problems: list[str] = []
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise TriageDataError(f"{origin}: not valid TOML: {exc}") from None
    for name in data:
        if name not in ("imminence", "negation", "harmless", "types"):
            problems.append(f"[{name}]: not a table of this file ({_TABLES})")
    negation: Mapping[str, Any] = data.get("negation", {})
    if not isinstance(negation, dict):
        problems.append(f"negation: a table ({_TABLES})")
        negation = {}
    for part in negation:
        if part not in _NEGATION_PARTS:
            problems.append(f"[negation.{part}]: not a table of this file ({_TABLES})")
    parts = {
        part: _entries_of(f"negation.{part}", negation.get(part), problems)
        for part in _NEGATION_PARTS
    }
    problems.extend(
        f"[negation.between]: {entry.text!r}: one word each (the gap is walked word by word)"
        for entry in parts["between"]
        if len(entry.words) != 1
    )
    imminence = _entries_of("imminence", data.get("imminence"), problems)
    harmless = _entries_of("harmless", data.get("harmless"), problems)
    kinds = _type_lists(data.get("types"), problems)
    if problems:
        raise TriageDataError(f"{origin}:\n  " + "\n  ".join(problems))
    return WordLists(
        types=tuple(kinds),
        imminence=EntryList(imminence),
        negation_before=EntryList(parts["before"]),
        negation_between=EntryList(parts["between"]),
        negation_after=EntryList(parts["after"]),
        harmless=EntryList(harmless),
    )


def read_source() -> str:
    """The text of the word lists as installed beside this module."""
    return resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")


@cache
def word_lists() -> WordLists:
    """The installed word lists, read and checked once; :class:`TriageDataError` if broken."""
    return load_word_lists(read_source())


def triage(text: str) -> Triage:
    """What ``text``'s words say: a Critical candidate or not, the tip type they name, the
    entries that matched, and whether an agent must look.

    - A match of a Critical type makes a Critical candidate (``needs_review``), unless it is
      negated ("not a gun", "pistola de juguete"): then the text is Standard but flagged
      (``negated``, ``needs_review``). An unnegated Critical match elsewhere in the text wins.
    - The tip type is the first type of the file with a counted match, Critical types first;
      self-harm is the first ("I'm going to shoot myself" is self_harm).
    - A word of time ("tomorrow", "mañana") is nothing alone; with a Critical match it is added
      to ``matched`` as ``"tomorrow+threat"``.
    - Standard types ("vape") only give the tip type: no review, no negation.
    """
    return word_lists().triage(text)


def main(texts: Sequence[str]) -> int:
    """``python -m sms.triage [TEXT...]``: check the word lists; show how each text is read."""
    try:
        lists = word_lists()
    except TriageDataError as exc:
        print(exc)
        return 1
    print(f"sms/{DATA_FILE}: ok")
    for text in texts:
        found = lists.triage(text)
        flags = [
            name
            for name, on in (("needs review", found.needs_review), ("negated", found.negated))
            if on
        ]
        print(
            f"{text!r}: {found.level.value}, type {found.tip_type or '-'}; "
            f"matched {', '.join(found.matched) or '-'}"
            + (f"; negated {', '.join(found.negated_matched)}" if found.negated else "")
            + (f" ({', '.join(flags)})" if flags else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
