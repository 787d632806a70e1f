"""Match a caller's spoken school name (Twilio ``SpeechResult``) against the directory.

Pure code: no Flask, no database. The IVR builds a :class:`SchoolIndex` from the active schools
(``SchoolName`` rows), hands it the recognised text and gets a :class:`SchoolMatch` back:

* ``best`` is set only for a confident, unambiguous match; the flow reads it back to the caller
  and has it confirmed by a key, so a wrong-but-plausible guess costs one key press;
* ``ambiguous`` says that two or more schools scored nearly the same (``best`` is then ``None``
  and ``candidates`` holds them): ask again, or go on with the school unknown;
* neither: nothing plausible was said ("um", "I don't know", "pizza").

Both sides go through the same normalisation: case, accents, punctuation, "St."/"Saint",
"Mt"/"Mount", "&"/"and", number words (English and Spanish) to digits, dotted initials ("P.S.")
merged. Words that never tell schools apart ("school", "high", "escuela", "la", "the", fillers)
are left out of the comparison; the school-level words ("high", "middle", "elementary",
"secundaria", ...) come back as a weaker signal so "Lincoln High" prefers "Lincoln High School"
over "Lincoln Elementary". Every short run of the caller's words is compared, joined without
spaces ("north shore" ~ "northshore", "jeff erson" ~ "jefferson"), with the schools' names and
the runs of their words ("Aspen" ~ "Aspen Ridge", at a discount), both as letters (rapidfuzz's
Indel ratio) and as sounds (Metaphone: "rose of elt" ~ "Roosevelt").

If the whole utterance is a spoken school code that exists ("eleven oh one"), that school wins.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import jellyfish
from rapidfuzz import fuzz, process

__all__ = [
    "AMBIGUITY_MARGIN",
    "COVERAGE_WEIGHT",
    "HINTS_MAX_ENTRIES",
    "HINT_MAX_CHARS",
    "MATCH_THRESHOLD",
    "MAX_CANDIDATES",
    "MAX_SPAN_TOKENS",
    "MAX_SPEECH_TOKENS",
    "MIN_CANDIDATE_SCORE",
    "MIN_PARTIAL_CHARS",
    "MIN_PHONETIC_LENGTH",
    "NUMBER_SHARE",
    "PARTIAL_BASE",
    "PHONETIC_WEIGHT",
    "TYPE_WEIGHT",
    "SchoolIndex",
    "SchoolMatch",
    "SchoolName",
    "match_school",
    "parse_spoken_code",
    "speech_hints",
]

# ---------------------------------------------------------------------------------------------
# Thresholds and weights.
#
# A score is built as   base  = similarity x partial factor x coverage factor
#                       score = (1 - TYPE_WEIGHT) x base + TYPE_WEIGHT x type term
# with the type term 1 when the caller named the school's level ("high"), 0 when they named
# another level, and 0.5 when either side names none. So an exact name without a level scores
# 0.95, with the right level 1.0, with a wrong level 0.9.

#: Lowest score that is a match. 0.75 lets through an exact name said with the wrong level
#: (0.9), one or two recognition errors in a name ("lincon" ~ "lincoln": 0.88), a sound-alike
#: ("rose of elt" ~ "roosevelt" via Metaphone: 0.86), and a distinctive part of a longer name
#: ("aspen" for "Aspen Ridge": 0.77); it keeps out a similar-looking other word ("pizza" vs
#: "pizarro": letter ratio 0.67, score 0.65) and any match on only part of a name that is not
#: near-exact. A wrong-but-plausible pick costs the caller one "no" on the read-back.
MATCH_THRESHOLD = 0.75

#: Two schools closer than this are ambiguous. The level signal is worth 0.05 (neutral) to 0.1
#: (right vs wrong level), so "Lincoln High" (1.0 vs 0.9 for "Lincoln Elementary") is decided,
#: while "Lincoln" (0.95 vs 0.95) or a single recognition error between two similar names is not.
AMBIGUITY_MARGIN = 0.05

#: Candidates below this are not even listed (they are noise, not near misses).
MIN_CANDIDATE_SCORE = 0.5
#: How many candidates a match reports.
MAX_CANDIDATES = 5

#: Weight of the level words ("high", "middle", "primaria") in the final score.
TYPE_WEIGHT = 0.1

#: A sound-alike counts a little less than the same letters: Metaphone codes are short and
#: collide more easily than spellings.
PHONETIC_WEIGHT = 0.9
#: Metaphone codes shorter than this ("PS", "BRF") match far too many words to be evidence.
MIN_PHONETIC_LENGTH = 4

#: Matching only part of a school's distinctive words scores PARTIAL_BASE + (1 - PARTIAL_BASE) x
#: the part's share of the name's letters: "Aspen" for "Aspen Ridge" is 0.8 of an exact match, so
#: it is a match only when nearly exact, and a school whose whole name was said wins over it.
PARTIAL_BASE = 0.6
#: A number in a name ("P.S. 12 Harriet Tubman") is its main identifier: said alone it counts
#: as this share of the name at least.
NUMBER_SHARE = 0.75
#: A part of a name shorter than this (letters) is not evidence on its own ("st", "la").
MIN_PARTIAL_CHARS = 4

#: Distinctive words said beyond the matched ones cost up to this share of the score: "Lincoln
#: Park" prefers "Lincoln Park Elementary" (0.95) over "Lincoln Elementary" (0.84), and a long
#: ramble that happens to contain a name-like run ("... the park on main ..." ~ "Parkman") stays
#: below the threshold, while "uh it's Lincoln, the one on Fifth Street" still matches (0.77).
COVERAGE_WEIGHT = 0.35

#: Letter similarity (percent) below which a comparison is not looked at further, not even for
#: its sound: Metaphone alone is too lenient ("walmart" and "willow meadow" are WLMRT and WLMT).
_LETTER_CUTOFF = 60.0
#: The longest run of spoken words compared with a name (a name has rarely more than 4 words).
MAX_SPAN_TOKENS = 5
#: Only the first words of a very long utterance are looked at (bounds the work per call).
MAX_SPEECH_TOKENS = 40

#: Twilio: "a comma-separated list of up to 500 entries, each entry can be 100 characters or
#: fewer".
HINTS_MAX_ENTRIES = 500
HINT_MAX_CHARS = 100

#: A spoken code longer than this is not a code (``School.code`` is ``String(16)``).
_MAX_CODE_DIGITS = 16


# ---------------------------------------------------------------------------------------------
# Public types.


@dataclass(frozen=True)
class SchoolName:
    """One active school of the directory, as the matcher needs it."""

    id: int
    name: str
    code: str
    #: Other names people use for it ("LHS"), matched like the name.
    aliases: tuple[str, ...] = ()


def _plain_words(text: str) -> list[str]:
    """Words in lower case without accents, for exact comparisons (aliases)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.findall(r"[^\W_]+", plain)


@dataclass(frozen=True)
class SchoolMatch:
    """What the caller's words matched.

    ``best`` is the confident, unambiguous match, else ``None``. ``score`` is the top candidate's
    score (0..1) even when it is not a match. ``ambiguous`` is true when the top candidates are
    within :data:`AMBIGUITY_MARGIN` of each other and the top one would have matched; ``best`` is
    then ``None``. ``candidates`` are the top few (best first) with their scores.
    """

    best: SchoolName | None
    score: float
    ambiguous: bool
    candidates: list[tuple[SchoolName, float]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Vocabulary.


def _words(text: str) -> list[str]:
    return text.split()


_ELEMENTARY = "elementary"
_MIDDLE = "middle"
_HIGH = "high"
_PS = "ps"

#: Generic school words, with the school level each one names (empty: names none).
_GENERIC: dict[str, frozenset[str]] = {
    word: frozenset(levels)
    for words, levels in (
        (("school", "schools", "escuela", "escuelas", "colegio", "escolar"), ()),
        (("academy", "academia", "instituto", "institute", "charter", "magnet", "public"), ()),
        (("publica", "publico", "campus", "district", "unified"), ()),
        (("catholic", "catolica", "catolico", "christian", "cristiana", "cristiano"), ()),
        (("parochial", "parish", "lutheran", "episcopal", "parroquial"), ()),
        (("preparatory", "prep", "preparatoria", "prepa", "bachillerato", "liceo"), (_HIGH,)),
        (("high", "senior", "secondary"), (_HIGH,)),
        (("secundaria", "secundario"), (_MIDDLE, _HIGH)),
        (("middle", "intermediate", "intermedia", "intermedio"), (_MIDDLE,)),
        (("elementary", "primary", "primaria", "elemental"), (_ELEMENTARY,)),
        ((_PS,), (_PS,)),
    )
    for word in words
}

#: Function words and fillers, English and Spanish: never part of what identifies a school.
_STOP: frozenset[str] = frozenset(
    _words("""
    a an the of at in on to for and or by near from with into is it its im i me my our we you
    your he she they their them this that these those there here was be been am are were
    go goes going went attend attends attending called call calling name named um umm uh uhh
    er erm ah ahh oh hmm mm mhm like yeah yes yep no nope okay ok so well just know dont not
    sure idk think maybe please hello hey hi number num said say what which whats thats
    really actually mean want student students kid kids sorry wait none nothing doctor junior
    el la los las lo un una unos unas de del al en y o u e que mi mis su sus es son se llama
    llamo yo voy va vamos estudio estudia esta este esa ese eso aqui alli ahi pues bueno si
    creo nombre numero por favor para con donde como em eh ninguna ninguno nada sabe
    """)
)

_TWO_WORD_PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("junior", "high"): (_MIDDLE,),
    ("senior", "high"): (_HIGH,),
    ("public", "school"): (_PS,),
    ("escuela", "publica"): (_PS,),
    ("grade", "school"): (_ELEMENTARY, "school"),
}

#: Abbreviations expanded on both sides ("st" is handled apart: Saint or Street).
_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "sts": ("saints",),
    "ste": ("sainte",),
    "mt": ("mount",),
    "mtn": ("mountain",),
    "ft": ("fort",),
    "pt": ("point",),
    "dr": ("doctor",),
    "jr": ("junior",),
    "mlk": ("martin", "luther", "king"),
    "hs": (_HIGH, "school"),
    "ms": (_MIDDLE, "school"),
    "jhs": (_MIDDLE, "school"),
    "elem": (_ELEMENTARY,),
    "acad": ("academy",),
    "intl": ("international",),
    "sch": ("school",),
    "pub": ("public",),
}
#: Only in a directory name: in speech, Spanish "es" means "is".
_NAME_ABBREVIATIONS: dict[str, tuple[str, ...]] = {"es": (_ELEMENTARY, "school")}


def _ordinal(n: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th") if not 11 <= n % 100 <= 13 else "th"
    return f"{n}{suffix}"


_ENGLISH_ORDINALS: dict[str, str] = {
    word: _ordinal(n)
    for n, word in enumerate(
        _words(
            "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
            "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
            "twentieth"
        ),
        start=1,
    )
}

# Number words: (kind, value). Kinds: zero; unit 1-9; teen 10-19; tens 20-90; compound 21-29
# (Spanish "veintiuno"); hundred (a multiplier); hundreds (Spanish "ciento", "doscientos": added);
# thousand (a multiplier, also Spanish "mil").
_NumberWord = tuple[str, int]

_ENGLISH_NUMBERS: dict[str, _NumberWord] = {
    "zero": ("zero", 0),
    **{
        w: ("unit", n)
        for n, w in enumerate(_words("one two three four five six seven eight nine"), 1)
    },
    **{
        w: ("teen", n)
        for n, w in enumerate(
            _words(
                "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
            ),
            10,
        )
    },
    **{
        w: ("tens", 10 * n)
        for n, w in enumerate(_words("twenty thirty forty fifty sixty seventy eighty ninety"), 2)
    },
    "hundred": ("hundred", 100),
    "thousand": ("thousand", 1000),
}

_SPANISH_NUMBERS: dict[str, _NumberWord] = {
    "cero": ("zero", 0),
    **{
        w: ("unit", n)
        for n, w in enumerate(_words("uno dos tres cuatro cinco seis siete ocho nueve"), 1)
    },
    **{
        w: ("teen", n)
        for n, w in enumerate(
            _words("diez once doce trece catorce quince dieciseis diecisiete dieciocho diecinueve"),
            10,
        )
    },
    "veinte": ("tens", 20),
    **{
        w: ("compound", 20 + n)
        for n, w in enumerate(
            _words(
                "veintiuno veintidos veintitres veinticuatro veinticinco veintiseis veintisiete "
                "veintiocho veintinueve"
            ),
            1,
        )
    },
    **{
        w: ("tens", 10 * n)
        for n, w in enumerate(
            _words("treinta cuarenta cincuenta sesenta setenta ochenta noventa"), 3
        )
    },
    "cien": ("hundreds", 100),
    "ciento": ("hundreds", 100),
    **{
        f"{stem}{ending}": ("hundreds", 100 * n)
        for n, stem in (
            (2, "doscient"),
            (3, "trescient"),
            (4, "cuatrocient"),
            (5, "quinient"),
            (6, "seiscient"),
            (7, "setecient"),
            (8, "ochocient"),
            (9, "novecient"),
        )
        for ending in ("os", "as")
    },
    "mil": ("thousand", 1000),
}

#: In a name, Spanish "once" (11) is far more likely the English word.
_NAME_NUMBERS: dict[str, _NumberWord] = {
    **{w: v for w, v in _SPANISH_NUMBERS.items() if w != "once"},
    **_ENGLISH_NUMBERS,
}
_SPANISH_SPEECH_NUMBERS: dict[str, _NumberWord] = {**_NAME_NUMBERS, "once": ("teen", 11)}
_CODE_NUMBERS: dict[str, _NumberWord] = {
    **_SPANISH_SPEECH_NUMBERS,
    "oh": ("zero", 0),
    "o": ("zero", 0),
}
_REPEATERS: dict[str, int] = {"double": 2, "triple": 3, "doble": 2}

#: Words that may surround a spoken code ("my school code is ...").
_CODE_FILLERS: frozenset[str] = frozenset(
    _words("""
    my the code is its it school number num pound hash dash um uh er eh hmm mm ok okay so
    es el mi codigo numero de la escuela este pues and y
    """)
)

_APOSTROPHE_CHARS = "'`\u2019\u00b4"
_APOSTROPHE_S = re.compile(rf"(\w)[{_APOSTROPHE_CHARS}]s\b")
_APOSTROPHES = re.compile(rf"[{_APOSTROPHE_CHARS}]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_LETTER_DIGIT = re.compile(r"([a-z])(?=\d)")
_DIGITS = re.compile(r"\d+")


# ---------------------------------------------------------------------------------------------
# Normalisation.


def _fold(text: str) -> list[str]:
    """Lower-case ASCII words: accents and punctuation gone, "&" as "and", "'s" dropped."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("&", " and ").replace("#", " number ").replace("+", " and ")
    text = _APOSTROPHE_S.sub(r"\1", text)
    text = _APOSTROPHES.sub("", text)
    text = _NON_ALNUM.sub(" ", text)
    text = _LETTER_DIGIT.sub(r"\1 ", text)  # "ps12" -> "ps 12" ("12th" stays)
    return text.split()


def _merge_initials(tokens: list[str]) -> list[str]:
    """Join runs of single letters: "p s 12" (from "P.S. 12") -> "ps 12"."""
    out: list[str] = []
    run: list[str] = []
    for word in [*tokens, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if len(run) >= 2:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        if word:
            out.append(word)
    return out


def _is_content(word: str) -> bool:
    return word not in _GENERIC and word not in _STOP


def _expand(tokens: list[str], *, name_side: bool) -> list[str]:
    """Phrases, abbreviations, "St" as Saint or Street, "hi" as "high"."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        word = tokens[i]
        pair = (word, tokens[i + 1]) if i + 1 < len(tokens) else None
        if pair is not None and pair in _TWO_WORD_PHRASES:
            out.extend(_TWO_WORD_PHRASES[pair])
            i += 2
            continue
        if word == "st":
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            # "St. Mary" is Saint; "Main St." / "Main St School" is Street.
            is_street = following is None or not _is_content(following)
            out.append("street" if is_street and out else "saint")
        elif (
            word == "one"
            and not name_side
            and out[-1:] in (["the"], ["that"], ["this"], ["which"])
            and (i + 1 == len(tokens) or tokens[i + 1] not in _NAME_NUMBERS)
        ):
            pass  # "the one on Fifth Street": a pronoun, not a number
        elif word == "hi" and out:
            out.append(_HIGH)  # "Lincoln hi": a greeting is the first word, if anywhere
        elif word in _ABBREVIATIONS:
            out.extend(_ABBREVIATIONS[word])
        elif name_side and word in _NAME_ABBREVIATIONS:
            out.extend(_NAME_ABBREVIATIONS[word])
        elif word in _ENGLISH_ORDINALS:
            out.append(_ENGLISH_ORDINALS[word])
        else:
            out.append(word)
        i += 1
    return out


class _NumberChunks:
    """Turn a run of number words into digit strings, one per number said.

    "one one zero one" -> 1, 1, 0, 1; "eleven oh one" -> 11, 0, 1; "twenty one" -> 21;
    "one hundred twelve" -> 112; "eleven hundred one" -> 1101; "mil doscientos" -> 1200.
    """

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self._thousands: int | None = None
        self._group: int | None = None
        self._last: str | None = None

    @property
    def last(self) -> str | None:
        return self._last

    @property
    def _active(self) -> bool:
        return self._thousands is not None or self._group is not None

    def flush(self) -> None:
        if self._active:
            self.chunks.append(str((self._thousands or 0) + (self._group or 0)))
        self._thousands = self._group = self._last = None

    def _start(self, group: int | None, last: str, thousands: int | None = None) -> None:
        self.flush()
        self._thousands, self._group, self._last = thousands, group, last

    def add_digits(self, digits: str) -> None:
        self.flush()
        self.chunks.append(digits)

    def add(self, kind: str, value: int) -> None:
        after_multiplier = self._active and self._last in ("hundred", "hundreds", "thousand")
        if kind == "zero":
            self.add_digits("0")
        elif kind == "unit":
            group = self._group
            if self._last == "tens" and group is not None and group % 10 == 0:
                self._group, self._last = group + value, "unit"
            elif after_multiplier:
                self._group, self._last = (group or 0) + value, "unit"
            else:
                self._start(value, "unit")
        elif kind in ("teen", "tens", "compound"):
            last = "tens" if kind == "tens" else "unit"
            if after_multiplier:
                self._group, self._last = (self._group or 0) + value, last
            else:
                self._start(value, last)
        elif kind == "hundred":
            group = self._group
            if group is not None and 1 <= group < 100 and self._last != "hundred":
                self._group, self._last = group * 100, "hundred"
            else:
                self._start(100, "hundred")
        elif kind == "hundreds":
            if self._active and self._last == "thousand":
                self._group, self._last = value, "hundreds"
            else:
                self._start(value, "hundreds")
        elif kind == "thousand":
            group = self._group
            if self._thousands is None and group is not None and 1 <= group < 1000:
                self._thousands, self._group, self._last = group * 1000, None, "thousand"
            else:
                self._start(None, "thousand", thousands=1000)


def _numbers_in(
    tokens: list[str],
    table: dict[str, _NumberWord],
    *,
    oh_between_numbers: bool,
) -> list[list[str] | str]:
    """Split ``tokens`` into plain words and runs of number words (as digit chunks)."""

    def is_number(j: int) -> bool:
        if not 0 <= j < len(tokens):
            return False
        word = tokens[j]
        if word in _REPEATERS:  # "double one"
            return j + 1 < len(tokens) and tokens[j + 1] in table
        return word in table or word.isdigit()

    out: list[list[str] | str] = []
    i = 0
    while i < len(tokens):
        if not is_number(i):
            out.append(tokens[i])
            i += 1
            continue
        chunks = _NumberChunks()
        while i < len(tokens):
            word = tokens[i]
            if word.isdigit():
                chunks.add_digits(word)
            elif word in table:
                chunks.add(*table[word])
            elif word in _REPEATERS and i + 1 < len(tokens) and tokens[i + 1] in table:
                chunks.flush()
                kind, value = table[tokens[i + 1]]
                for _ in range(_REPEATERS[word] - 1):
                    chunks.add(kind, value)
                    chunks.flush()
            elif (
                word in ("and", "y")
                and is_number(i + 1)
                and chunks.last
                in (("hundred", "hundreds", "thousand") if word == "and" else ("tens",))
            ):
                pass  # "one hundred and twelve", "treinta y uno"
            elif oh_between_numbers and word in ("oh", "o") and is_number(i + 1):
                chunks.add("zero", 0)  # "eleven oh one"
            else:
                break
            i += 1
        chunks.flush()
        out.append(chunks.chunks)
    return out


def _tokens(text: str, *, name_side: bool, language: str = "en") -> list[str]:
    """The normalised words of a school name or of what the caller said."""
    tokens = _expand(_merge_initials(_fold(text)), name_side=name_side)
    spanish = language.lower().startswith("es")
    table = _SPANISH_SPEECH_NUMBERS if spanish and not name_side else _NAME_NUMBERS
    out: list[str] = []
    for item in _numbers_in(tokens, table, oh_between_numbers=not name_side and not spanish):
        if isinstance(item, str):
            out.append(item)
        else:
            out.append("".join(item))  # "one one zero one" -> "1101", "twenty one" -> "21"
    return out


def _levels(tokens: Iterable[str]) -> frozenset[str]:
    levels: set[str] = set()
    for word in tokens:
        levels |= _GENERIC.get(word, frozenset())
    return frozenset(levels)


def _digits(text: str) -> str:
    return " ".join(_DIGITS.findall(text))


def _phonetic(text: str) -> str | None:
    """Metaphone of a joined run of words, when it is long enough to be evidence."""
    if not text or any(ch.isdigit() for ch in text):
        return None
    code = jellyfish.metaphone(text)
    return code if len(code) >= MIN_PHONETIC_LENGTH else None


# ---------------------------------------------------------------------------------------------
# Spoken codes.


def parse_spoken_code(speech: str) -> str | None:
    """The digits of a school code said aloud, or ``None`` if the words are not just a code.

    "one one zero one", "eleven oh one", "1101", "uno uno cero uno", "my code is 11 01",
    "double one zero one" all give ``"1101"``. Any other word ("Lincoln", "P.S. 12") gives
    ``None``, so a name is never mistaken for a code.
    """
    tokens = _fold(speech)
    if all(word in _CODE_FILLERS or word in ("oh", "o") for word in tokens):
        return None  # "oh" on its own is not a zero
    parts = _numbers_in(tokens, _CODE_NUMBERS, oh_between_numbers=True)
    digits: list[str] = []
    for part in parts:
        if isinstance(part, str):
            if part not in _CODE_FILLERS:
                return None
        else:
            digits.extend(part)
    code = "".join(digits)
    if not code or len(code) > _MAX_CODE_DIGITS:
        return None
    return code


# ---------------------------------------------------------------------------------------------
# The index.


@dataclass(frozen=True, slots=True)
class _Span:
    text: str
    coverage: float  # share of the caller's distinctive letters in this run


def _spans(tokens: list[str]) -> list[_Span]:
    """Runs of up to MAX_SPAN_TOKENS words that begin and end on a distinctive word.

    Each run is joined without spaces twice: with every word ("rose of elt" -> "roseofelt") and
    with its distinctive words only ("lincoln park academy of the arts" -> "lincolnparkarts").
    """
    tokens = tokens[:MAX_SPEECH_TOKENS]
    content = [i for i, word in enumerate(tokens) if _is_content(word)]
    total = sum(len(tokens[i]) for i in content)
    best: dict[str, float] = {}
    for a, start in enumerate(content):
        for end in content[a:]:
            if end - start >= MAX_SPAN_TOKENS:
                break
            words = tokens[start : end + 1]
            distinctive = [w for w in words if _is_content(w)]
            coverage = sum(map(len, distinctive)) / total
            for text in ("".join(words), "".join(distinctive)):
                if coverage > best.get(text, -1.0):
                    best[text] = coverage
    return [_Span(text, coverage) for text, coverage in best.items()]


def _core(tokens: list[str]) -> list[str]:
    core = [t for t in tokens if _is_content(t)]
    if core:
        return core
    # A name of only generic words ("The Academy"): keep what there is.
    return [t for t in tokens if t not in _STOP] or tokens


def _runs(core: list[str]) -> Iterable[tuple[str, float]]:
    """The school's distinctive words and their contiguous runs, joined, with their share."""
    whole = "".join(core)
    yield whole, 1.0
    if not whole:
        return
    for start in range(len(core)):
        for end in range(start + 1, min(len(core), start + MAX_SPAN_TOKENS) + 1):
            text = "".join(core[start:end])
            if text == whole:
                continue
            if text.isdigit():
                yield text, max(NUMBER_SHARE, len(text) / len(whole))
            elif len(text) >= MIN_PARTIAL_CHARS:
                yield text, len(text) / len(whole)


class SchoolIndex:
    """The directory's schools, normalised once, for matching many utterances quickly."""

    def __init__(self, schools: Sequence[SchoolName]) -> None:
        self._schools: list[SchoolName] = list(schools)
        self._levels: list[frozenset[str]] = []
        self._by_code: dict[str, SchoolName] = {}
        #: Each alias as plain words ("lhs", "the lake") → the schools that have it.
        self._by_alias: dict[str, list[int]] = {}
        by_text: dict[str, dict[int, float]] = {}
        for index, school in enumerate(self._schools):
            for alias in school.aliases:
                key = " ".join(_plain_words(alias))
                if key and school.id not in self._by_alias.setdefault(key, []):
                    self._by_alias[key].append(school.id)
            tokens = _tokens(school.name, name_side=True)
            self._levels.append(_levels(tokens))
            code = school.code.strip()
            if code:
                self._by_code.setdefault(code, school)
            runs = [
                *_runs(_core(tokens)),
                *(
                    run
                    for alias in school.aliases
                    for run in _runs(_core(_tokens(alias, name_side=True)))
                ),
            ]
            for text, share in runs:
                if text:
                    shares = by_text.setdefault(text, {})
                    shares[index] = max(share, shares.get(index, 0.0))
        #: Every distinct joined name or run of name words, once (many schools share "lincoln").
        self._texts: list[str] = list(by_text)
        self._text_digits: list[str] = [_digits(text) for text in self._texts]
        self._text_sounds: list[str | None] = [_phonetic(text) for text in self._texts]
        self._text_shares: list[list[tuple[int, float]]] = [
            list(by_text[text].items()) for text in self._texts
        ]

    def __len__(self) -> int:
        return len(self._schools)

    @property
    def schools(self) -> list[SchoolName]:
        return list(self._schools)

    def with_code(self, code: str) -> SchoolName | None:
        return self._by_code.get(code.strip())

    def named_by_alias(self, text: str) -> list[int]:
        """The schools whose alias the text says as words of their own ("a gun at LHS"), in the
        order the text says them. An alias is the directory's own name for a school: said
        exactly, it is as sure as a code."""
        words = _plain_words(text)
        found: list[int] = []
        longest = max((key.count(" ") + 1 for key in self._by_alias), default=0)
        for start in range(len(words)):
            for n in range(min(longest, len(words) - start), 0, -1):
                for school_id in self._by_alias.get(" ".join(words[start : start + n]), ()):
                    if school_id not in found:
                        found.append(school_id)
        return found

    def names_of(self, school_ids: Iterable[int]) -> list[str]:
        """The names and aliases of those schools."""
        wanted = set(school_ids)
        return [n for s in self._schools if s.id in wanted for n in (s.name, *s.aliases)]

    def match(self, speech: str, *, language: str = "en") -> SchoolMatch:
        """Match what the caller said (``language``: "en", "es", "es-US", ...)."""
        code = parse_spoken_code(speech)
        if code is not None and code in self._by_code:
            school = self._by_code[code]
            return SchoolMatch(best=school, score=1.0, ambiguous=False, candidates=[(school, 1.0)])

        tokens = _tokens(speech, name_side=False, language=language)
        spans = _spans(tokens)
        if not spans or not self._schools:
            return SchoolMatch(best=None, score=0.0, ambiguous=False, candidates=[])

        base: dict[int, float] = {}

        def consider(shares: list[tuple[int, float]], similarity: float, coverage: float) -> None:
            coverage_factor = 1.0 - COVERAGE_WEIGHT * (1.0 - coverage)
            for index, share in shares:
                partial = 1.0 if share >= 1.0 else PARTIAL_BASE + (1.0 - PARTIAL_BASE) * share
                value = similarity * partial * coverage_factor
                if value > base.get(index, 0.0):
                    base[index] = value

        for span in spans:
            digits = _digits(span.text)
            sound = _phonetic(span.text)
            for _, percent, i in process.extract(
                span.text, self._texts, scorer=fuzz.ratio, score_cutoff=_LETTER_CUTOFF, limit=None
            ):
                if self._text_digits[i] != digits:
                    continue  # numbers must agree exactly: "12" is not "112"
                letters = percent / 100.0
                similarity = letters
                text_sound = self._text_sounds[i]
                if sound is not None and text_sound is not None:
                    sounds_like = fuzz.ratio(sound, text_sound) / 100.0
                    # A sound-alike ("rose of elt" ~ "roosevelt": letters 0.78, sound 1.0) and
                    # letters and sound both fairly close ("guachington" ~ "washington": 0.76
                    # and 0.83) are better evidence than the letters alone.
                    similarity = max(
                        letters, PHONETIC_WEIGHT * sounds_like, (letters + sounds_like) / 2.0
                    )
                consider(self._text_shares[i], similarity, span.coverage)

        said_levels = _levels(tokens)
        scored: list[tuple[float, int]] = []
        for index, value in base.items():
            levels = self._levels[index]
            level_term = 0.5  # the caller or the name says no level
            if said_levels and levels:
                level_term = 1.0 if said_levels & levels else 0.0
            score = round((1.0 - TYPE_WEIGHT) * value + TYPE_WEIGHT * level_term, 4)
            scored.append((score, index))
        scored.sort(key=lambda item: (-item[0], self._schools[item[1]].name, item[1]))
        top_score = scored[0][0] if scored else 0.0
        candidates = [
            (self._schools[index], score)
            for score, index in scored[:MAX_CANDIDATES]
            if score >= MIN_CANDIDATE_SCORE
        ]
        if top_score < MATCH_THRESHOLD:
            return SchoolMatch(best=None, score=top_score, ambiguous=False, candidates=candidates)
        runner_up = candidates[1][1] if len(candidates) > 1 else 0.0
        if top_score - runner_up < AMBIGUITY_MARGIN:
            return SchoolMatch(best=None, score=top_score, ambiguous=True, candidates=candidates)
        return SchoolMatch(
            best=candidates[0][0], score=top_score, ambiguous=False, candidates=candidates
        )


def match_school(
    speech: str, schools: Sequence[SchoolName], *, language: str = "en"
) -> SchoolMatch:
    """Match once; build a :class:`SchoolIndex` to match many utterances against one list."""
    return SchoolIndex(schools).match(speech, language=language)


# ---------------------------------------------------------------------------------------------
# Twilio speech hints.

_HINT_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_HINT_EXPANSIONS = {"st": "Saint", "sts": "Saints", "mt": "Mount", "ft": "Fort"}
#: Dropped from the ends of a hint's distinctive part ("Academy of the Arts" -> "Arts"); Spanish
#: articles stay: they belong to the name ("Del Mar", "La Salle").
_HINT_EDGE_WORDS = frozenset(_words("the a an of at for and"))


@functools.lru_cache(maxsize=4096)
def _is_generic_word(word: str) -> bool:
    folded = _tokens(word, name_side=True)
    return bool(folded) and all(t in _GENERIC for t in folded)


def _hint_words(name: str) -> list[str]:
    """A name's words for a hint: no punctuation, initials joined ("P.S." -> "PS"), "St." and
    "Mt." spelled out as they are said."""
    raw = _HINT_WORD.findall(name.replace("&", " and ").replace("\u2019", "'"))
    words: list[str] = []
    for word in raw:
        if (
            len(word) == 1
            and word.isalpha()
            and words
            and words[-1].isalpha()
            and (words[-1].isupper() and len(words[-1]) < 4 and word.isupper())
        ):
            words[-1] += word  # "P S" -> "PS"
        else:
            words.append(word)
    out: list[str] = []
    for i, word in enumerate(words):
        key = word.lower()
        if key in _HINT_EXPANSIONS:
            following = _fold(words[i + 1]) if i + 1 < len(words) else []
            # "Main St" and "Main St School" are a street: leave them as they are.
            street = key == "st" and bool(out) and (not following or not _is_content(following[0]))
            if not street:
                word = _HINT_EXPANSIONS[key]
        out.append(word)
    return out


def _hint_entry(words: list[str]) -> str:
    """The words joined by single spaces, cut at a word to at most HINT_MAX_CHARS."""
    if words and len(words[0]) > HINT_MAX_CHARS:
        return words[0][:HINT_MAX_CHARS]
    entry = ""
    for word in words:
        candidate = f"{entry} {word}" if entry else word
        if len(candidate) > HINT_MAX_CHARS:
            break
        entry = candidate
    return entry


def _distinctive_words(words: list[str]) -> list[str]:
    kept = [word for word in words if not _is_generic_word(word)]
    while kept and kept[0].lower() in _HINT_EDGE_WORDS:
        kept.pop(0)
    while kept and kept[-1].lower() in _HINT_EDGE_WORDS:
        kept.pop()
    if all(word.isdigit() for word in kept):
        return []  # "12" alone (from "P.S. 12") is no phrase: use the whole name
    return kept


def speech_hints(schools: Sequence[SchoolName]) -> str:
    """A value for ``<Gather hints="...">``: the schools' names as phrases Twilio should expect.

    The distinctive part of every name comes first ("Lakeview" for "Lakeview High School",
    "Saint Mary's" for "St. Mary's Academy"), then the full names while there is room: at most
    500 entries of at most 100 characters, no commas inside an entry, single spaces, no
    duplicates (ignoring case).
    """
    distinctive: list[str] = []
    full: list[str] = []
    for school in schools:
        words = _hint_words(school.name)
        if not words:
            continue
        full.append(_hint_entry(words))
        distinctive.append(_hint_entry(_distinctive_words(words) or words))
    entries: list[str] = []
    seen: set[str] = set()
    for entry in [*distinctive, *full]:
        key = entry.casefold()
        if not entry or key in seen:
            continue
        seen.add(key)
        entries.append(entry)
        if len(entries) >= HINTS_MAX_ENTRIES:
            break
    return ", ".join(entries)
