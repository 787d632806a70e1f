"""Spoken school names (Twilio ``SpeechResult``) matched against the directory."""

from __future__ import annotations

import random

import pytest

from ivr_flows.school_match import (
    AMBIGUITY_MARGIN,
    HINT_MAX_CHARS,
    HINTS_MAX_ENTRIES,
    MATCH_THRESHOLD,
    MAX_CANDIDATES,
    SchoolIndex,
    SchoolMatch,
    SchoolName,
    match_school,
    parse_spoken_code,
    speech_hints,
)

NAMES = [
    "Lincoln Elementary School",
    "Lincoln Middle School",
    "Lincoln High School",
    "Lincoln Park Elementary",
    "Bravo Middle School",
    "Jefferson Elementary School",
    "St. Mary Catholic School",
    "Roosevelt Middle School",
    "Northshore Elementary School",
    "North High School",
    "P.S. 12 Harriet Tubman",
    "PS 112",
    "Lakeview High School",
    "Lakeview Middle School",
    "Prairie View Elementary School",
    "Foothills High School",
    "Aspen Ridge Middle School",
    "Washington Academy",
    "César Chávez Elementary",
    "Dr. Martin Luther King Jr. High School",
    "Mt. Vernon Middle School",
    "Arts & Sciences Academy",
    "La Salle Preparatory",
    "Del Mar High School",
    "Pizarro Elementary",
    "Twelve Oaks Elementary",
    "Kennedy Middle School",
    "Sts. Peter and Paul School",
    "Escuela Benito Juárez",
    "Main St. Elementary",
    "Washington Irving Middle School",
]
SCHOOLS = [SchoolName(id=i, name=name, code=str(1100 + i)) for i, name in enumerate(NAMES, 1)]
BY_NAME = {school.name: school for school in SCHOOLS}


@pytest.fixture(scope="module")
def index() -> SchoolIndex:
    return SchoolIndex(SCHOOLS)


def _best_name(match: SchoolMatch) -> str | None:
    return match.best.name if match.best is not None else None


def _check_consistent(match: SchoolMatch) -> None:
    assert 0.0 <= match.score <= 1.0
    assert len(match.candidates) <= MAX_CANDIDATES
    scores = [score for _, score in match.candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    if match.best is not None:
        assert not match.ambiguous
        assert match.candidates[0] == (match.best, match.score)
        assert match.score >= MATCH_THRESHOLD
    if match.ambiguous:
        assert match.best is None
        assert len(match.candidates) >= 2
        assert match.candidates[0][1] - match.candidates[1][1] < AMBIGUITY_MARGIN


# --- a confident match -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speech", "language", "expected"),
    [
        # Exact and with a level word.
        ("Lincoln High School", "en", "Lincoln High School"),
        ("lincoln high", "en", "Lincoln High School"),
        ("Lincoln hi", "en", "Lincoln High School"),
        ("Lincoln Middle", "en", "Lincoln Middle School"),
        ("lincoln elementary", "en", "Lincoln Elementary School"),
        ("Lincoln junior high", "en", "Lincoln Middle School"),
        ("bravo middle", "en", "Bravo Middle School"),
        ("Bravo", "en", "Bravo Middle School"),
        ("the school is called Kennedy", "en", "Kennedy Middle School"),
        ("um I go to Kennedy middle school", "en", "Kennedy Middle School"),
        # Recognition splits and merges words.
        ("Jeff Erson Elementary", "en", "Jefferson Elementary School"),
        ("North Shore", "en", "Northshore Elementary School"),
        ("north shore elementary", "en", "Northshore Elementary School"),
        ("prairieview", "en", "Prairie View Elementary School"),
        ("Foot Hills High", "en", "Foothills High School"),
        ("Lake View High", "en", "Lakeview High School"),
        # Sound-alikes and misspellings.
        ("rose of elt", "en", "Roosevelt Middle School"),
        ("Rosevelt middle school", "en", "Roosevelt Middle School"),
        ("Kenedy", "en", "Kennedy Middle School"),
        # Abbreviations, punctuation, accents.
        ("Saint Mary's", "en", "St. Mary Catholic School"),
        ("St. Mary", "en", "St. Mary Catholic School"),
        ("saint marys catholic", "en", "St. Mary Catholic School"),
        ("Mount Vernon", "en", "Mt. Vernon Middle School"),
        ("mt vernon middle", "en", "Mt. Vernon Middle School"),
        ("arts and sciences", "en", "Arts & Sciences Academy"),
        ("Arts & Sciences Academy", "en", "Arts & Sciences Academy"),
        ("Saints Peter and Paul", "en", "Sts. Peter and Paul School"),
        ("cesar chavez", "en", "César Chávez Elementary"),
        ("César Chávez", "es", "César Chávez Elementary"),
        ("Martin Luther King", "en", "Dr. Martin Luther King Jr. High School"),
        ("MLK high", "en", "Dr. Martin Luther King Jr. High School"),
        (
            "Doctor Martin Luther King Junior High School",
            "en",
            "Dr. Martin Luther King Jr. High School",
        ),
        ("Main Street Elementary", "en", "Main St. Elementary"),
        # Articles that are part of a name.
        ("La Salle", "en", "La Salle Preparatory"),
        ("del mar high", "en", "Del Mar High School"),
        # Numbers as digits or words.
        ("P.S. 12", "en", "P.S. 12 Harriet Tubman"),
        ("PS twelve", "en", "P.S. 12 Harriet Tubman"),
        ("public school twelve", "en", "P.S. 12 Harriet Tubman"),
        ("Harriet Tubman", "en", "P.S. 12 Harriet Tubman"),
        ("p s one twelve", "en", "PS 112"),
        ("PS one hundred twelve", "en", "PS 112"),
        ("P.S. 112", "en", "PS 112"),
        ("twelve oaks", "en", "Twelve Oaks Elementary"),
        ("12 Oaks Elementary", "en", "Twelve Oaks Elementary"),
        # A distinctive part of a longer name.
        ("Aspen", "en", "Aspen Ridge Middle School"),
        ("Lincoln Park", "en", "Lincoln Park Elementary"),
        ("Washington Irving", "en", "Washington Irving Middle School"),
        ("Washington", "en", "Washington Academy"),
        # Spanish phrasing.
        ("la escuela Lincoln high", "es", "Lincoln High School"),
        ("escuela secundaria Bravo", "es", "Bravo Middle School"),
        ("la primaria Jefferson", "es", "Jefferson Elementary School"),
        ("es la escuela intermedia Lincoln", "es", "Lincoln Middle School"),
        ("voy a la preparatoria Lincoln", "es", "Lincoln High School"),
        ("Benito Juárez", "es", "Escuela Benito Juárez"),
        ("la escuela Benito Juarez", "es", "Escuela Benito Juárez"),
        ("la escuela pública número doce", "es", "P.S. 12 Harriet Tubman"),
        ("Guachington", "es", "Washington Academy"),
        ("se llama Kennedy", "es", "Kennedy Middle School"),
        # A longer sentence around the name.
        ("uh it's Lincoln High, the one on Fifth Street", "en", "Lincoln High School"),
        ("I want to report something at Foothills", "en", "Foothills High School"),
    ],
)
def test_confident_match(index: SchoolIndex, speech: str, language: str, expected: str) -> None:
    match = index.match(speech, language=language)
    _check_consistent(match)
    assert _best_name(match) == expected, match
    assert not match.ambiguous


def test_level_word_prefers_the_school_of_that_level(index: SchoolIndex) -> None:
    high = index.match("Lincoln High")
    scores = {school.name: score for school, score in high.candidates}
    assert scores["Lincoln High School"] > scores["Lincoln Elementary School"]
    assert scores["Lincoln High School"] - scores["Lincoln Elementary School"] >= AMBIGUITY_MARGIN


def test_a_wrong_level_still_finds_the_only_school_of_that_name(index: SchoolIndex) -> None:
    # "Bravo" is a middle school only: the caller's "high" is a weaker signal than the name.
    assert _best_name(index.match("Bravo High")) == "Bravo Middle School"
    assert _best_name(index.match("Kennedy elementary")) == "Kennedy Middle School"


def test_the_whole_name_said_beats_a_part_of_it(index: SchoolIndex) -> None:
    match = index.match("Lincoln Park")
    scores = {school.name: score for school, score in match.candidates}
    assert scores["Lincoln Park Elementary"] > scores["Lincoln Elementary School"]


# --- ambiguous --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speech", "language", "tied"),
    [
        (
            "Lincoln",
            "en",
            {"Lincoln Elementary School", "Lincoln Middle School", "Lincoln High School"},
        ),
        (
            "la escuela Lincoln",
            "es",
            {"Lincoln Elementary School", "Lincoln Middle School", "Lincoln High School"},
        ),
        ("Lakeview", "en", {"Lakeview High School", "Lakeview Middle School"}),
        ("my school is Lake View", "en", {"Lakeview High School", "Lakeview Middle School"}),
        ("Lakeview school", "en", {"Lakeview High School", "Lakeview Middle School"}),
        # "secundaria" is middle school in Mexico and high school elsewhere.
        ("escuela secundaria Lakeview", "es", {"Lakeview High School", "Lakeview Middle School"}),
        (
            "lincon",
            "en",
            {"Lincoln Elementary School", "Lincoln Middle School", "Lincoln High School"},
        ),
        ("twelve", "en", {"P.S. 12 Harriet Tubman", "Twelve Oaks Elementary"}),
        ("escuela número doce", "es", {"P.S. 12 Harriet Tubman", "Twelve Oaks Elementary"}),
    ],
)
def test_ambiguous(index: SchoolIndex, speech: str, language: str, tied: set[str]) -> None:
    match = index.match(speech, language=language)
    _check_consistent(match)
    assert match.ambiguous, match
    assert match.best is None
    assert match.score >= MATCH_THRESHOLD
    top = {school.name for school, score in match.candidates if score == match.score}
    assert top == tied


def test_the_same_name_in_two_districts_is_ambiguous() -> None:
    schools = [
        SchoolName(1, "Lincoln Elementary School", "1101"),
        SchoolName(2, "Lincoln Elementary", "2201"),
        SchoolName(3, "Bravo Middle School", "2202"),
    ]
    match = match_school("Lincoln Elementary", schools)
    assert match.ambiguous
    assert match.best is None
    assert {school.id for school, _ in match.candidates[:2]} == {1, 2}
    # The code still tells them apart.
    assert match_school("two two zero one", schools).best == schools[1]


def test_two_similar_names_with_one_recognition_error_are_ambiguous() -> None:
    schools = [SchoolName(1, "Madison Elementary", "1"), SchoolName(2, "Madson Elementary", "2")]
    match = match_school("Madisson", schools)
    assert match.ambiguous
    assert match.best is None


# --- no match ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "speech",
    [
        "",
        "   ",
        "um",
        "uh, hmm",
        "I don't know",
        "I'm not sure",
        "I don't want to say",
        "no",
        "yes",
        "pizza",
        "tacos",
        "banana",
        "Snapchat",
        "what",
        "hello?",
        "the school",
        "high school",
        "the middle school",
        "I go to school",
        "there's a kid with a gun",
        "someone is getting bullied",
        "can I talk to someone",
        "no sé",
        "no me acuerdo",
        "la escuela",
        "escuela secundaria",
        "...",
        "123456789",
    ],
)
@pytest.mark.parametrize("language", ["en", "es-US"])
def test_no_match(index: SchoolIndex, speech: str, language: str) -> None:
    match = index.match(speech, language=language)
    _check_consistent(match)
    assert match.best is None, match
    assert not match.ambiguous, match
    assert match.score < MATCH_THRESHOLD


def test_an_empty_directory_matches_nothing() -> None:
    match = match_school("Lincoln High", [])
    assert match == SchoolMatch(best=None, score=0.0, ambiguous=False, candidates=[])


def test_pizza_is_not_pizarro(index: SchoolIndex) -> None:
    match = index.match("pizza")
    assert match.best is None
    assert match.score < MATCH_THRESHOLD


def test_spanish_once_is_eleven_only_in_spanish() -> None:
    schools = [SchoolName(1, "Escuela 11", "9001"), SchoolName(2, "Oncewood Elementary", "9002")]
    assert _best_name(match_school("escuela once", schools, language="es")) == "Escuela 11"
    assert _best_name(match_school("escuela once", schools, language="en")) != "Escuela 11"


# --- school codes -----------------------------------------------------------------------------


def test_a_spoken_code_of_the_directory_wins(index: SchoolIndex) -> None:
    lakeview_high = BY_NAME["Lakeview High School"]
    for speech in ("1113", "eleven thirteen", "one one one three", "uno uno uno tres"):
        match = index.match(speech)
        assert match.best == lakeview_high, speech
        assert match.score == 1.0


def test_a_spoken_code_not_in_the_directory_is_no_match(index: SchoolIndex) -> None:
    assert index.match("nine nine nine nine").best is None


@pytest.mark.parametrize(
    ("speech", "code"),
    [
        ("one one zero one", "1101"),
        ("eleven oh one", "1101"),
        ("1101", "1101"),
        ("uno uno cero uno", "1101"),
        ("once cero uno", "1101"),
        ("my code is 11 01", "1101"),
        ("the code is, uh, 2 2 0 1", "2201"),
        ("11-01", "1101"),
        ("1 1 0 1", "1101"),
        ("double one zero one", "1101"),
        ("one one o one", "1101"),
        ("eleven hundred one", "1101"),
        ("one thousand one hundred one", "1101"),
        ("one thousand one hundred and one", "1101"),
        ("mil ciento uno", "1101"),
        ("twenty twenty", "2020"),
        ("twenty oh one", "2001"),
        ("twenty one oh four", "2104"),
        ("dos dos cero uno", "2201"),
        ("veintidós cero uno", "2201"),
        ("treinta y uno", "31"),
        ("mi código es uno uno cero tres", "1103"),
        ("zero zero seven", "007"),
        ("one two three four", "1234"),
        ("One, one, zero, one.", "1101"),
    ],
)
def test_parse_spoken_code(speech: str, code: str) -> None:
    assert parse_spoken_code(speech) == code


@pytest.mark.parametrize(
    "speech",
    [
        "",
        "um",
        "oh",
        "Lincoln",
        "Lincoln High",
        "P.S. 12",
        "I don't know",
        "one two three four five six seven eight nine one two three four five six seven eight",
        "pizza one",
    ],
)
def test_parse_spoken_code_rejects_words_that_are_not_a_code(speech: str) -> None:
    assert parse_spoken_code(speech) is None


# --- Twilio hints -----------------------------------------------------------------------------


def _entries(hints: str) -> list[str]:
    return hints.split(", ")


def _assert_valid_hints(hints: str) -> list[str]:
    entries = _entries(hints)
    assert len(entries) <= HINTS_MAX_ENTRIES
    for entry in entries:
        assert entry
        assert len(entry) <= HINT_MAX_CHARS
        assert "," not in entry
        assert entry == entry.strip()
        assert "  " not in entry
    assert len({entry.casefold() for entry in entries}) == len(entries)
    return entries


def test_hints_for_a_small_directory() -> None:
    entries = _assert_valid_hints(speech_hints(SCHOOLS))
    # The distinctive parts come first, then the full names.
    assert entries.index("Lincoln") < entries.index("Lincoln High School")
    for phrase in (
        "Lincoln",
        "Lakeview",
        "Northshore",
        "Saint Mary",
        "Mount Vernon",
        "Arts and Sciences",
        "Saints Peter and Paul",
        "César Chávez",
        "La Salle",
        "Del Mar",
        "Benito Juárez",
        "Lincoln High School",
        "PS 12 Harriet Tubman",
        "Main St Elementary",
    ):
        assert phrase in entries, phrase
    assert entries.count("Lincoln") == 1


def test_hints_cap_at_500_entries_of_at_most_100_characters() -> None:
    schools = [
        SchoolName(i, f"Name{i:03d} Ridge Elementary School, East Campus", str(i))
        for i in range(600)
    ]
    schools.append(SchoolName(600, "Very " * 40 + "Long Academy", "600"))
    schools.append(SchoolName(601, "X" * 150, "601"))
    entries = _assert_valid_hints(speech_hints(schools))
    assert len(entries) == HINTS_MAX_ENTRIES
    # More schools than room: only distinctive parts, the first 500 of them.
    assert entries[0] == "Name000 Ridge East"
    assert all(entry.startswith("Name") for entry in entries)


def test_hints_keep_every_distinctive_part_before_any_full_name() -> None:
    schools = [SchoolName(i, f"School{i} Middle School", str(i)) for i in range(300)]
    entries = _assert_valid_hints(speech_hints(schools))
    assert len(entries) == HINTS_MAX_ENTRIES
    assert entries[:300] == [f"School{i}" for i in range(300)]
    assert entries[300] == "School0 Middle School"


def test_hints_for_odd_names() -> None:
    schools = [
        SchoolName(1, "  Lincoln   High\tSchool ", "1"),
        SchoolName(2, "LINCOLN HIGH SCHOOL", "2"),
        SchoolName(3, "!!!", "3"),
        SchoolName(4, "X" * 150, "4"),
        SchoolName(5, "The Academy", "5"),
    ]
    entries = _assert_valid_hints(speech_hints(schools))
    assert entries == ["Lincoln", "X" * 100, "The Academy", "Lincoln High School"]
    assert speech_hints([]) == ""


# --- a large directory ------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_PEOPLE = _words(
    "Lincoln Washington Jefferson Roosevelt Kennedy Madison Franklin Hamilton Jackson Adams "
    "Monroe Garfield Grant Harrison Cleveland McKinley Wilson Hoover Truman Eisenhower Carver "
    "Douglass Tubman Chavez Juarez Marshall Edison Whitman Emerson Thoreau Twain Frost "
    "Dickinson Hawthorne Longfellow Audubon Muir Bryant Irving Parkman"
)
_TREES = _words(
    "Oak Maple Cedar Pine Willow Aspen Birch Elm Spruce Hickory Magnolia Sycamore Cypress "
    "Juniper Laurel Poplar Redwood Sequoia Alder Chestnut"
)
_PLACES = _words(
    "Ridge Valley Creek Hills Park Grove Meadow Brook Springs Heights Lake River Glen Hollow "
    "Crossing"
)
_LEVELS = ("Elementary School", "Middle School", "High School")


def _large_directory(size: int = 2000) -> tuple[list[SchoolName], dict[int, str]]:
    """``size`` schools: up to three levels for each of many distinct names, across districts."""
    cores = (
        list(_PEOPLE)
        + [f"{tree} {place}" for tree in _TREES for place in _PLACES]
        + [f"{person} {place}" for person in _PEOPLE for place in _PLACES]
    )
    rnd = random.Random(20240901)
    rnd.shuffle(cores)
    schools: list[SchoolName] = []
    core_of: dict[int, str] = {}
    for core in cores:
        for level in rnd.sample(_LEVELS, rnd.choice((1, 2, 3, 3))):
            school_id = len(schools) + 1
            schools.append(SchoolName(school_id, f"{core} {level}", f"{10000 + school_id}"))
            core_of[school_id] = core
            if len(schools) == size:
                return schools, core_of
    raise AssertionError("not enough names")


@pytest.fixture(scope="module")
def large() -> tuple[SchoolIndex, list[SchoolName], dict[int, str]]:
    schools, core_of = _large_directory()
    assert len(schools) == 2000
    return SchoolIndex(schools), schools, core_of


def _said_level(school: SchoolName) -> str:
    return school.name.split()[-2].lower()  # "elementary", "middle", "high"


def test_large_directory_finds_the_school_with_its_level(
    large: tuple[SchoolIndex, list[SchoolName], dict[int, str]],
) -> None:
    index, schools, core_of = large
    for school in schools[::13]:
        core = core_of[school.id].lower()
        level = _said_level(school)
        for speech in (
            f"{core} {level}",
            f"um it's {core} {level} school",
            f"{core.replace(' ', '')} {level}",  # merged by the recognizer
        ):
            match = index.match(speech)
            assert match.best == school, (speech, match)


def test_large_directory_tolerates_a_recognition_error(
    large: tuple[SchoolIndex, list[SchoolName], dict[int, str]],
) -> None:
    index, schools, core_of = large
    checked = 0
    for school in schools[::17]:
        words = core_of[school.id].lower().split()
        longest = max(words, key=len)
        if len(longest) < 7:
            continue
        garbled = longest[:3] + longest[4:]  # one letter lost: "eisenhower" -> "eisnhower"
        speech = " ".join(garbled if word == longest else word for word in words)
        match = index.match(f"{speech} {_said_level(school)}")
        assert match.best == school, (speech, match)
        checked += 1
    assert checked > 30


def test_large_directory_name_without_level_is_ambiguous_or_the_only_one(
    large: tuple[SchoolIndex, list[SchoolName], dict[int, str]],
) -> None:
    index, schools, core_of = large
    for school in schools[::29]:
        core = core_of[school.id]
        same_name = {s for s in schools if core_of[s.id] == core}
        match = index.match(core.lower())
        if len(same_name) == 1:
            assert match.best == school, (core, match)
        else:
            assert match.ambiguous, (core, match)
            tied = {s for s, score in match.candidates if score == match.score}
            assert tied == same_name


def test_large_directory_spanish_phrasing(
    large: tuple[SchoolIndex, list[SchoolName], dict[int, str]],
) -> None:
    index, schools, core_of = large
    spanish = {"elementary": "primaria", "middle": "intermedia", "high": "preparatoria"}
    for school in schools[::31]:
        speech = f"la escuela {spanish[_said_level(school)]} {core_of[school.id].lower()}"
        assert index.match(speech, language="es-US").best == school, speech


@pytest.mark.parametrize(
    "speech", ["I don't know", "um", "", "pizza", "no sé", "high school", "help me please"]
)
def test_large_directory_garbage_is_no_match(
    large: tuple[SchoolIndex, list[SchoolName], dict[int, str]], speech: str
) -> None:
    index, _, _ = large
    match = index.match(speech)
    assert match.best is None
    assert not match.ambiguous


def test_match_school_is_a_thin_wrapper_over_the_index(index: SchoolIndex) -> None:
    for speech in ("Lincoln hi", "Lincoln", "pizza", "eleven oh one"):
        assert match_school(speech, SCHOOLS) == index.match(speech)
