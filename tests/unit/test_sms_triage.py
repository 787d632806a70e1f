"""SMS triage: which texts are Critical candidates, of which type, what is negated, and the
checks on the word lists. Pure: no app, no database."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from dispatcher.levels import level_of_type
from hotline.models import TipLevel
from sms import triage as triage_module
from sms.triage import (
    Triage,
    TriageDataError,
    WordLists,
    load_word_lists,
    read_source,
    triage,
    word_lists,
)

CRITICAL = TipLevel.CRITICAL
STANDARD = TipLevel.STANDARD

# Critical candidates: (text, tip type) --------------------------------------------------------

CRITICAL_EN = [
    ("there's a kid with a gun on the bus to Bravo Middle School", "weapon"),
    ("my friend says he'll bring a gun tomorrow", "weapon"),
    ("HE HAS A GUN!!!", "weapon"),
    ("gunnnn in his bag", "weapon"),
    ("he has a gunn", "weapon"),
    ("he brought guns to school", "weapon"),
    ("he has a knif", "weapon"),
    ("there's a knife in her backpack", "weapon"),
    ("he said he's got knives in his car", "weapon"),
    ("jake has a glock in his locker", "weapon"),
    ("bro got a strap on him", "weapon"),
    ("he's carrying a gat", "weapon"),
    ("kid in 3rd period is strapped", "weapon"),
    ("he showed me an ar-15 on snap", "weapon"),
    ("🔫 in the locker room", "weapon"),
    ("the gun is not fake", "weapon"),
    ("he has a real gun, not a toy", "weapon"),
    ("not joking he has a gun", "weapon"),  # "not" is about the joking
    ("No, he really has a gun", "weapon"),  # the comma ends the "No"
    ("I had a panic attack because he has a gun", "weapon"),
    ("kms", "self_harm"),
    ("i want to kms", "self_harm"),
    ("my friend wants to drive into a tree", "self_harm"),
    ("she said she wants to end her life", "self_harm"),
    ("I want to die", "self_harm"),
    ("i wanna dieeee", "self_harm"),
    ("I'm going to shoot myself", "self_harm"),
    ("I'm going to shoot myself with my dad's gun", "self_harm"),
    ("he keeps saying he'll unalive himself", "self_harm"),
    ("she cuts herself in the bathroom", "self_harm"),
    ("I'm scared I'll hurt myself", "self_harm"),
    ("my friend is suicidal", "self_harm"),
    ("I don't want to live anymore", "self_harm"),
    ("I'm not going to kill myself but I think about it", "self_harm"),
    ("he said he'll shoot up the school tomorrow", "planned_attack"),
    ("he said he'll shoot up the skool", "planned_attack"),
    ("they're planning a school shooting", "planned_attack"),
    ("someone wrote a hit list in the bathroom", "planned_attack"),
    ("there's a bomb in the gym", "bomb_threat"),
    ("bombs in the cafeteria", "bomb_threat"),
    ("he said there's a bom under the bleachers", "bomb_threat"),
    ("he's going to blow up the school", "bomb_threat"),
    # Over-flagging is the safe side: an agent reads it and lowers it.
    ("the test was the bomb", "bomb_threat"),
    ("active shooter in building C", "in_progress"),
    ("there is a shooter in the hallway", "in_progress"),
    ("he's gonna shoot", "threat_of_violence"),
    ("I'll beat you up tomorrow", "threat_of_violence"),
    ("I want to end it", "self_harm"),
    ("im gonna kil him 2morrow", "threat_of_violence"),
    ("killl", "threat_of_violence"),
    ("he said he would kill her", "threat_of_violence"),
    ("he threatened to stab me after school", "threat_of_violence"),
    ("they're gonna shoot him", "threat_of_violence"),
    ("there was a shootin near the park", "threat_of_violence"),
]

CRITICAL_ES = [
    ("un chico tiene una pistola en el autobús", "weapon"),
    ("UN CHICO TIENE UNA PISTOLA EN EL AUTOBUS", "weapon"),
    ("trae un arma en la mochila", "weapon"),
    ("tiene armas en su casillero", "weapon"),
    ("vi un cuchillo en su mochila", "weapon"),
    ("trae una navaja", "weapon"),
    ("la pistola no es de juguete", "weapon"),  # a negated negation
    ("mi amiga dice que quiere matarse", "self_harm"),
    ("mi amiga quiere estrellar su carro contra un árbol", "self_harm"),
    ("quiero suicidarme", "self_harm"),
    ("voy a quitarme la vida", "self_harm"),
    ("ya no quiero vivir", "self_harm"),
    ("me quiero morir", "self_harm"),
    ("mi amigo se quiere suicidar", "self_harm"),
    ("mi amiga se corta", "self_harm"),
    ("me quiero cortar", "self_harm"),
    ("lo van a golpear mañana", "threat_of_violence"),
    ("dijo que va a haber un tiroteo mañana", "planned_attack"),
    ("va a haber una balacera en la escuela", "planned_attack"),
    ("hay una bomba en el baño", "bomb_threat"),
    ("están disparando en la cafetería", "in_progress"),
    ("dice que va a disparar a todos", "threat_of_violence"),
    ("lo voy a matar", "threat_of_violence"),
    ("Mañana va a matar a alguien", "threat_of_violence"),
]


@pytest.mark.parametrize(("text", "tip_type"), CRITICAL_EN + CRITICAL_ES)
def test_a_critical_candidate_names_its_type_and_asks_for_review(text: str, tip_type: str) -> None:
    found = triage(text)
    assert found.level is CRITICAL
    assert found.tip_type == tip_type
    assert found.needs_review
    assert found.matched


# Standard: nothing Critical in the words ------------------------------------------------------

NOTHING_EN = [
    "the lunch was cold again",
    "hi",
    "help",
    "",
    "   ",
    "I have great skills",
    "we've begun the project",
    "Gunther is nice",
    "the gates were locked",  # not "gat" + "es"
    "we walked 5 kilometers",  # "kill" is not a prefix
    "the wifi is stable",  # nor "stab"
    "I bombed the test",
    "the killer whale show was cool",
    "see you tomorrow",
    "tmrw is the game",
    "I had a panic attack in class",
    "she made a bath bomb",
    "can I call shotgun",
    "my backpack strap broke",
    "they are shooting hoops after school",
    "we saw a shooting star",
    "I need the hot glue gun for art",
    "shoot me a text",
    "gonna shoot hoops later",
    "oh shoot i forgot my homework",
    "I'm dying lol",
    "I beat him at chess",
]

NOTHING_ES = [
    "mañana hay examen",
    "manana hay examen",
    "hola",
    "la comida estaba fría",
    "necesito ayuda con la tarea",
    "hoy no hay clases",
    "el lunes hay junta",
    "la alarma sonó",  # not "arma"
    "tengo matemáticas",  # not "matar"
    "dice puros disparates",  # not "disparar"
    "tuve un ataque de pánico",
    "uso una pistola de silicona para manualidades",
    "me voy a cortar el pelo",
]


@pytest.mark.parametrize("text", NOTHING_EN + NOTHING_ES)
def test_everyday_words_are_standard_with_no_flag(text: str) -> None:
    assert triage(text) == Triage(STANDARD, None, (), (), needs_review=False)


# Standard types: the type, no flag --------------------------------------------------------------

STANDARD_TYPED_EN = [
    ("people are smoking in the bathroom at Alpha Middle School", "smoking"),
    ("kids are vaping in the locker room", "vaping"),
    ("someone is selling weed behind the gym", "drugs"),
    ("he keeps bullying my little brother", "bullying"),
    ("they pick on her every day", "bullying"),
    ("vaping in the bathroom today", "vaping"),  # a time means nothing here
]

STANDARD_TYPED_ES = [
    ("unos chicos están fumando atrás de la escuela", "smoking"),
    ("están vapeando en el baño", "vaping"),
    ("me hacen bullying en el recreo", "bullying"),
    ("venden drogas en el baño", "drugs"),
]


@pytest.mark.parametrize(("text", "tip_type"), STANDARD_TYPED_EN + STANDARD_TYPED_ES)
def test_a_standard_type_is_named_without_review(text: str, tip_type: str) -> None:
    found = triage(text)
    assert found.level is STANDARD
    assert found.tip_type == tip_type
    assert not found.needs_review
    assert not found.negated
    assert not any(m.endswith("+threat") for m in found.matched)


# Negation ----------------------------------------------------------------------------------------

NEGATED_EN = [
    "it's not a gun, just a toy",
    "it isn't a gun",
    "it isn\u2019t a gun",  # a phone's curly apostrophe
    "it wasn't a real gun",
    "he has no gun",
    "it's a fake gun",
    "just a nerf gun",
    "he had a water gun",
    "he has a gun but it's just a toy",
    "there was no bomb",
    "it was a plastic knife",
    "he'll bring a water gun tomorrow",
]

NEGATED_ES = [
    "no es un arma",
    "no tiene pistola",
    "no trae ningún arma",
    "es una pistola de juguete",
    "era una pistola de agua",
]


@pytest.mark.parametrize("text", NEGATED_EN + NEGATED_ES)
def test_a_negated_critical_word_is_standard_but_flagged(text: str) -> None:
    found = triage(text)
    assert found.level is STANDARD
    assert found.tip_type is None  # a Critical type would make the tip Critical again
    assert found.negated
    assert found.needs_review
    assert found.matched == ()


def test_a_negated_word_names_the_entry() -> None:
    assert triage("it's not a gun, just a toy").negated_matched == ("gun",)
    assert triage("no es un arma").negated_matched == ("arma",)


def test_an_unnegated_critical_word_beside_a_negated_one_is_critical() -> None:
    found = triage("not a gun but he has a knife")
    assert found == Triage(CRITICAL, "weapon", ("knife",), ("gun",), needs_review=True)
    assert found.negated


@pytest.mark.parametrize(
    "text",
    [
        "I don't want to die",
        "I'm not going to kill myself",
        "no quiero vivir",
        "no me quiero matar",
    ],
)
def test_self_harm_is_never_negated(text: str) -> None:
    found = triage(text)
    assert found.level is CRITICAL
    assert found.tip_type == "self_harm"
    assert not found.negated


# Precedence, imminence, what is shown ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I'm going to shoot myself with my dad's gun",
        "i'll kill myself, i have a knife",
        "me voy a matar con la pistola de mi papá",
    ],
)
def test_self_harm_wins_the_type_over_a_weapon(text: str) -> None:
    found = triage(text)
    assert found.tip_type == "self_harm"
    assert any(m in found.matched for m in ("gun", "knife", "pistola"))


def test_a_critical_type_wins_over_a_standard_one() -> None:
    assert triage("they were vaping and one had a gun").tip_type == "weapon"


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        (
            "he said he'll shoot up the school tomorrow",
            ("he'll shoot", "shoot up", "tomorrow+threat"),
        ),
        ("im gonna kil him 2morrow", ("kill", "2morrow+threat")),
        ("dijo que va a haber un tiroteo mañana", ("tiroteo", "mañana+threat")),
        ("Tonight he brings the GUN", ("gun", "tonight+threat")),
        ("my friend wants to drive into a tree", ("drive into a tree",)),
        ("gunnnn in his bag", ("gun",)),  # the entry, not the text's spelling
        ("GUNS", ("gun",)),
    ],
)
def test_matched_lists_the_entries_and_the_time_of_a_threat(
    text: str, matched: tuple[str, ...]
) -> None:
    assert triage(text).matched == matched


@pytest.mark.parametrize(
    "text",
    [
        "gun",
        "GUN",
        "Gun.",
        "gun!!!",
        "gunnnn",
        "gunn",
        "guns",
        "\uff47\uff55\uff4e",  # full-width letters
        "gu\u200bn",  # a zero-width space inside the word
        "(gun)",
        "a gun-",
    ],
)
def test_spellings_of_one_word_all_match(text: str) -> None:
    assert triage(text).matched == ("gun",)


@pytest.mark.parametrize(
    ("text", "shown"),
    [("mañana", "mañana+threat"), ("manana", "mañana+threat"), ("MAÑANA", "mañana+threat")],
)
def test_accents_and_case_do_not_matter(text: str, shown: str) -> None:
    assert triage(f"trae una pistola {text}").matched == ("pistola", shown)


def test_accents_do_not_matter_in_phrases() -> None:
    assert triage("esta disparando").tip_type == "in_progress"
    assert triage("está disparando").tip_type == "in_progress"


def test_a_phrase_does_not_run_across_a_full_stop() -> None:
    assert triage("shoot. up").tip_type is None


ALL_MESSAGES = (
    [text for text, _ in CRITICAL_EN + CRITICAL_ES]
    + NOTHING_EN
    + NOTHING_ES
    + [text for text, _ in STANDARD_TYPED_EN + STANDARD_TYPED_ES]
    + NEGATED_EN
    + NEGATED_ES
)


@pytest.mark.parametrize("text", ALL_MESSAGES)
def test_the_type_always_agrees_with_the_level(text: str) -> None:
    found = triage(text)
    if found.tip_type is not None:
        assert level_of_type(found.tip_type) is found.level
    assert found.needs_review == (found.level is CRITICAL or found.negated)


# The shipped word lists --------------------------------------------------------------------------


def _shown(entry_text: str) -> str:
    """How an entry shows in ``matched`` when the first of each ``|`` choice matched."""
    return re.sub(r"\|\S*", "", entry_text)


def _example(entry_text: str) -> str:
    """A text an entry must match: the first of each ``|`` choice, without ``*``."""
    return _shown(entry_text).replace("*", "")


def _shipped() -> WordLists:
    return load_word_lists(read_source())


def test_the_shipped_lists_load_and_self_harm_comes_first() -> None:
    assert word_lists().types[0].tip_type == "self_harm"
    assert not word_lists().types[0].negatable


@pytest.mark.parametrize(
    ("tip_type", "entry"),
    [(kind.tip_type, e.text) for kind in _shipped().types for e in kind.entries.entries],
)
def test_every_type_entry_matches_alone_and_gives_its_type(tip_type: str, entry: str) -> None:
    found = triage(_example(entry))
    assert found.tip_type == tip_type
    assert found.level is level_of_type(tip_type)
    assert _shown(entry) in found.matched


@pytest.mark.parametrize("entry", [e.text for e in _shipped().imminence.entries])
def test_every_time_entry_marks_a_threat(entry: str) -> None:
    assert f"{_example(entry)}+threat" in triage(f"he will bring a gun {_example(entry)}").matched


@pytest.mark.parametrize("entry", [e.text for e in _shipped().negation_before.entries])
def test_every_negation_before_negates(entry: str) -> None:
    assert triage(f"{_example(entry)} gun").negated_matched == ("gun",)


@pytest.mark.parametrize("entry", [e.text for e in _shipped().negation_after.entries])
def test_every_negation_after_negates(entry: str) -> None:
    assert triage(f"gun {_example(entry)}").negated_matched == ("gun",)


@pytest.mark.parametrize("entry", [e.text for e in _shipped().harmless.entries])
def test_every_harmless_phrase_is_nothing(entry: str) -> None:
    assert triage(_example(entry)) == Triage(STANDARD, None, (), (), needs_review=False)


# Checking a word-list file -----------------------------------------------------------------------

MINIMAL = """
[imminence]
en = ["tomorrow"]
[negation.before]
en = ["not"]
[negation.between]
en = ["a"]
[negation.after]
en = ["is fake"]
[harmless]
en = ["bath bomb"]
[types.self_harm]
negatable = false
en = ["kms"]
[types.weapon]
en = ["gun"]
[types.vaping]
en = ["vape"]
"""


def test_a_file_is_loaded_from_a_string() -> None:
    lists = load_word_lists(MINIMAL, origin="test.toml")
    assert lists.triage("gun tomorrow").matched == ("gun", "tomorrow+threat")
    assert lists.triage("not a gun").negated
    assert lists.triage("knife").level is STANDARD  # only this file's words


def _broken(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (
            _broken("[types.weapon]", "[types.wepon]"),
            r"\[types\.wepon\]: unknown tip type 'wepon' \(did you mean weapon\?\)",
        ),
        (_broken('en = ["gun"]', "en = []"), r"\[types\.weapon\] en: empty list"),
        (_broken('en = ["gun"]', 'en = ["gun", ""]'), r"\[types\.weapon\] en: '': empty"),
        (_broken('en = ["gun"]', 'en = ["gun", "  "]'), r"\[types\.weapon\] en: '  ': empty"),
        (_broken('en = ["gun"]', 'en = ["-"]'), r"\[types\.weapon\] en: '-': has no words"),
        (_broken('en = ["gun"]', 'en = ["gun."]'), r"'gun\.': holds '\.'"),
        (_broken('en = ["gun"]', 'en = ["gun", 3]'), r"\[types\.weapon\] en: 3 is not a word"),
        (_broken('en = ["gun"]', 'en = ["gu*"]'), r"'gu\*': at least 3 letters before \*"),
        (_broken('en = ["gun"]', 'en = ["g*n"]'), r"'g\*n' is not one word"),
        (_broken('en = ["gun"]', 'en = ["gun||knife"]'), r"an empty choice between \|"),
        (
            _broken('en = ["gun"]', 'english = ["gun"]'),
            r"\[types\.weapon\] english: not a language",
        ),
        (
            _broken("[types.vaping]", "[types.complaint]"),
            r"\[types\.complaint\]: complaint is of level other",
        ),
        (
            _broken(
                '[types.vaping]\nen = ["vape"]', '[types.vaping]\nnegatable = true\nen = ["vape"]'
            ),
            r"\[types\.vaping\] negatable: only a Critical type",
        ),
        (_broken("negatable = false", 'negatable = "no"'), r"negatable: true or false"),
        (
            _broken('[types.self_harm]\nnegatable = false\nen = ["kms"]\n', "")
            + '[types.self_harm]\nen = ["kms"]\n',
            r"\[types\.self_harm\] must be the first type",
        ),
        (_broken('en = ["a"]', 'en = ["a real"]'), r"\[negation\.between\]: 'a real': one word"),
        (_broken('[harmless]\nen = ["bath bomb"]\n', ""), r"\[harmless\] is missing"),
        (_broken("[harmless]", "[harmles]"), r"\[harmles\]: not a table of this file"),
        (_broken("[negation.after]", "[negation.afterwards]"), r"\[negation\.afterwards\]: not"),
        (_broken("[imminence]", "imminence ="), r"not valid TOML"),
    ],
)
def test_a_broken_file_is_refused_naming_the_problem(source: str, problem: str) -> None:
    with pytest.raises(TriageDataError, match=problem):
        load_word_lists(source)


def test_every_problem_is_named_at_once_with_the_file() -> None:
    source = _broken("[types.weapon]", "[types.wepon]").replace('en = ["vape"]', "en = []")
    with pytest.raises(TriageDataError) as refused:
        load_word_lists(source, origin="test.toml")
    message = str(refused.value)
    assert message.startswith("test.toml:\n")
    assert "unknown tip type 'wepon'" in message
    assert "[types.vaping] en: empty list" in message


# python -m sms.triage ----------------------------------------------------------------------------


@pytest.fixture
def fresh_word_lists() -> Iterator[None]:
    """The cached lists forgotten before and after, so a test may swap the file."""
    word_lists.cache_clear()
    yield None
    word_lists.cache_clear()


@pytest.mark.usefixtures("fresh_word_lists")
def test_the_command_checks_the_file_and_reads_texts(capsys: pytest.CaptureFixture[str]) -> None:
    assert triage_module.main(["he has a gat", "it's a nerf gun"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sms/triage.toml: ok"
    assert lines[1] == "'he has a gat': critical, type weapon; matched gat (needs review)"
    assert lines[2] == (
        '"it\'s a nerf gun": standard, type -; matched -; negated gun (needs review, negated)'
    )


@pytest.mark.usefixtures("fresh_word_lists")
def test_the_command_fails_on_a_broken_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        triage_module, "read_source", lambda: _broken("[types.weapon]", "[types.wepon]")
    )
    assert triage_module.main([]) == 1
    assert "unknown tip type 'wepon'" in capsys.readouterr().out
