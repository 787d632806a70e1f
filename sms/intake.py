"""The text bot's guided intake: what a reporter's text says to the bot, and what the bot does
next. Pure: no Flask, no database (the service, :mod:`sms.service`, reads and writes the rows).

The tip exists from the first text on (nothing waits for the bot); the bot only asks for what is
missing, in this order: the school (a code or a name; "reply 1 if it is ..." when unsure), then
what happened (when the first text was only "hi" or "help"). Every text is kept as the
reporter's words whatever the bot makes of it. The bot stops asking after :data:`MAX_MISSES`
answers in a row that do not fit, or as soon as the reporter asks for a person: the tip then
waits for an agent. Carrier keywords (STOP, YES, HELP...) never reach it: the service answers
them first, so "YES" is never taken for "it is that school".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace

from hotline.models import IntakeStep
from ivr_flows.school_match import SchoolIndex

#: Answers in a row that do not fit the question before the bot stops asking.
MAX_MISSES = 2
#: Schools offered at most in one "reply 1 for ..., 2 for ..." question.
MAX_OFFERED = 3
#: A name match this good, and this far ahead of the next school, is taken without asking (a
#: full name inside a long sentence scores about 0.8; a short name alone 0.95).
SURE_SCORE = 0.75
SURE_MARGIN = 0.08
#: Schools within this of the best are offered together when the name fits several.
CLOSE_SCORES = 0.05


@dataclass(frozen=True)
class SchoolGuess:
    """The school(s) a text names: one (``sure`` or to be confirmed), or several to pick from."""

    school_ids: tuple[int, ...]
    sure: bool
    #: "code" or "name": how it was read, for the timeline.
    how: str
    #: One school good enough to be the tip's school while the reporter is asked to confirm.
    likely: bool = True


@dataclass(frozen=True)
class Reading:
    """What one text says to the bot."""

    school: SchoolGuess | None
    #: A bare digit 1-9: a pick from the schools offered.
    choice: int | None
    wants_person: bool
    #: The text says something about what is happening (more than a greeting or a school).
    tells_what: bool


@dataclass(frozen=True)
class IntakeState:
    step: IntakeStep
    misses: int = 0
    offered: tuple[int, ...] = ()


class Question:
    """What the bot asks next (the wording is ``[sms]`` in the catalogue)."""

    SCHOOL = "ask_school"
    CONFIRM_SCHOOL = "confirm_school"
    WHAT = "ask_what"
    #: Not a question: the bot says an agent will take it from here.
    HANDED_TO_AGENT = "handed_to_agent"


@dataclass(frozen=True)
class Turn:
    state: IntakeState
    #: Set the tip's school to this (None: leave it).
    set_school: int | None
    set_school_how: str | None
    #: What to ask or say next (None: nothing, the intake is over or was already).
    ask: str | None

    @property
    def handed_to_agent(self) -> bool:
        return self.ask == Question.HANDED_TO_AGENT


# The rules ---------------------------------------------------------------------------------------


def first_turn(reading: Reading) -> Turn:
    """The first text of a tip: take what it gives, ask for the first thing missing."""
    if reading.wants_person:
        return _to_agent(IntakeState(IntakeStep.ASK_SCHOOL))
    if reading.school is not None:
        return _school_named(reading.school, told_what=reading.tells_what)
    return _ask(IntakeStep.ASK_SCHOOL, Question.SCHOOL)


def next_turn(state: IntakeState, reading: Reading, *, told_what: bool) -> Turn:
    """A later text while the intake is on; ``told_what``: some text of the tip so far (this
    one included) says what is happening."""
    if state.step in (IntakeStep.DONE, IntakeStep.WITH_AGENT):
        return Turn(state, None, None, None)
    if reading.wants_person:
        return _to_agent(state)
    if state.step is IntakeStep.CONFIRM_SCHOOL and reading.choice is not None:
        if 1 <= reading.choice <= len(state.offered):
            picked = state.offered[reading.choice - 1]
            return _after_school(picked, "choice", told_what=told_what)
        return _missed(state)
    if state.step in (IntakeStep.ASK_SCHOOL, IntakeStep.CONFIRM_SCHOOL):
        if reading.school is not None:
            return _school_named(reading.school, told_what=told_what)
        return _missed(state)
    # ASK_WHAT
    if reading.tells_what:
        return Turn(IntakeState(IntakeStep.DONE), None, None, None)
    return _missed(state)


def _school_named(guess: SchoolGuess, *, told_what: bool) -> Turn:
    if len(guess.school_ids) == 1 and guess.sure:
        return _after_school(guess.school_ids[0], guess.how, told_what=told_what)
    offered = guess.school_ids[:MAX_OFFERED]
    state = IntakeState(IntakeStep.CONFIRM_SCHOOL, offered=offered)
    # One likely school is set at once, before the reporter confirms it: a Critical tip is then
    # planned to that school's people within its deadline instead of waiting for a reply.
    likely = offered[0] if len(offered) == 1 and guess.likely else None
    return Turn(state, likely, guess.how if likely else None, Question.CONFIRM_SCHOOL)


def _after_school(school_id: int, how: str, *, told_what: bool) -> Turn:
    if told_what:
        return Turn(IntakeState(IntakeStep.DONE), school_id, how, None)
    return Turn(IntakeState(IntakeStep.ASK_WHAT), school_id, how, Question.WHAT)


def _ask(step: IntakeStep, question: str) -> Turn:
    return Turn(IntakeState(step), None, None, question)


def _missed(state: IntakeState) -> Turn:
    misses = state.misses + 1
    if misses >= MAX_MISSES:
        return _to_agent(replace(state, misses=misses))
    question = {
        IntakeStep.ASK_SCHOOL: Question.SCHOOL,
        IntakeStep.CONFIRM_SCHOOL: Question.CONFIRM_SCHOOL,
        IntakeStep.ASK_WHAT: Question.WHAT,
    }[state.step]
    return Turn(replace(state, misses=misses), None, None, question)


def _to_agent(state: IntakeState) -> Turn:
    return Turn(
        IntakeState(IntakeStep.WITH_AGENT, state.misses, ()), None, None, Question.HANDED_TO_AGENT
    )


# Reading a text ----------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lower case, accents off, compatibility forms (full-width digits) made plain."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_CHOICE_RE = re.compile(r"^\s*#?\s*([1-9])\s*[.!)]?\s*$")

#: Asking for a person, in English and Spanish (folded: no accents).
_PERSON_RE = re.compile(
    r"\b(?:agent|agente|human|humano|real person|a person|una persona|alguien real|operator"
    r"|operador|talk to (?:someone|somebody|a person|a human)|speak to (?:someone|somebody)"
    r"|hablar con (?:alguien|una persona|un agente))\b"
)


#: Words that say nothing of what is happening: greetings, "help", fillers, school words.
def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EMPTY_WORDS = _word_set(
    """
    hi hii hey heyy hello helo yo sup hiya help helpp plz pls please ok okay k test testing
    hola ola buenas buenos dias tardes noches ayuda ayudame porfa porfavor por favor oye
    info new nuevo nueva the a an at to in de la el en school escuela colegio i need necesito
    """
)


def read_text(
    text: str,
    *,
    schools: SchoolIndex,
    language: str,
    critical_words: bool = False,
) -> Reading:
    """What ``text`` says to the bot; ``critical_words``: the triage found threat words (that
    is telling what happens)."""
    folded = _fold(text)
    choice_match = _CHOICE_RE.match(folded)
    choice = int(choice_match.group(1)) if choice_match else None
    school = None if choice is not None else guess_school(folded, schools, language)
    words = _WORD_RE.findall(folded)
    named = _school_words(schools, school)
    substance = [
        w for w in words if w not in _EMPTY_WORDS and w not in named and not schools.with_code(w)
    ]
    return Reading(
        school=school,
        choice=choice,
        wants_person=bool(_PERSON_RE.search(folded)),
        tells_what=critical_words or len(substance) >= 2,
    )


def guess_school(text: str, schools: SchoolIndex, language: str) -> SchoolGuess | None:
    """A school code anywhere in the text (as a word of its own), else a school name inside it
    (:class:`SchoolIndex` reads names the way a caller says them: short names, misspellings)."""
    by_code = _codes_in(_WORD_RE.findall(text), schools)
    if len(by_code) == 1:
        return SchoolGuess((by_code[0],), sure=True, how="code")
    if by_code:
        return SchoolGuess(tuple(by_code[:MAX_OFFERED]), sure=False, how="code")
    by_alias = schools.named_by_alias(text)
    if len(by_alias) == 1:
        return SchoolGuess((by_alias[0],), sure=True, how="alias")
    if by_alias:
        return SchoolGuess(tuple(by_alias[:MAX_OFFERED]), sure=False, how="alias")
    match = schools.match(text, language=language)
    if not match.candidates:
        return None
    top = match.candidates[0][1]
    if match.best is not None and not match.ambiguous:
        second = match.candidates[1][1] if len(match.candidates) > 1 else 0.0
        sure = top >= SURE_SCORE and top - second >= SURE_MARGIN
        return SchoolGuess((match.best.id,), sure=sure, how="name")
    if not match.ambiguous:
        # Below the matcher's threshold ("nortshor"): offered, not taken.
        return SchoolGuess((match.candidates[0][0].id,), sure=False, how="name", likely=False)
    close = [s.id for s, score in match.candidates if top - score <= CLOSE_SCORES]
    return SchoolGuess(tuple(close[:MAX_OFFERED]), sure=False, how="name")


def _codes_in(words: Iterable[str], schools: SchoolIndex) -> list[int]:
    found: list[int] = []
    for word in words:
        school = schools.with_code(word) if word.isdigit() else None
        if school is not None and school.id not in found:
            found.append(school.id)
    return found


def _school_words(schools: SchoolIndex, guess: SchoolGuess | None) -> frozenset[str]:
    """The words of the guessed schools' names: naming the school is not telling what happens."""
    if guess is None:
        return frozenset()
    return frozenset(
        w for name in schools.names_of(guess.school_ids) for w in _WORD_RE.findall(_fold(name))
    )
