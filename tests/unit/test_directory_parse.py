"""The directory parser and validator (:mod:`hotline.directory.parse`): no database, no session.

Every kind of problem a file can have is found here with the line the file shows it on (the
header is line 1); the import tests (``test_directory.py``) check, on both databases, that a file
with any of them changes nothing.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

import pytest

from hotline.directory import COLUMNS, parse, parse_directory
from tests.support.directory_files import (
    BAD_FILES,
    DATABASE_ONLY,
    base_rows,
    duty_rows,
    row,
    school_row,
    to_csv,
)
from tests.support.directory_files import plus_duty_row as _duty
from tests.support.directory_files import plus_rows as _plus
from tests.support.directory_files import with_row as _with

# Every kind of problem, at its line ---------------------------------------------------------------

PARSER_CASES = [case for case in BAD_FILES if case[0] not in DATABASE_ONLY]


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [pytest.param(data, line, message, id=name) for name, data, line, message in PARSER_CASES],
)
def test_every_problem_is_found_at_its_line_without_a_database(
    data: str | bytes, line: int, message: str
) -> None:
    result = parse_directory(data)
    assert result.directory is None, "a file with a problem must give nothing to apply"
    found = [(p.line, p.message) for p in result.problems]
    assert any(p_line == line and message in text_ for p_line, text_ in found), found
    assert [p.line for p in result.problems] == sorted(p.line for p in result.problems)


@pytest.mark.parametrize("name", sorted(DATABASE_ONLY))
def test_what_only_the_database_can_tell_parses_clean(name: str) -> None:
    """These cases are problems only against the directory already stored: the parser must
    accept them, and :func:`hotline.directory.apply.apply_directory` report them."""
    data = next(data for case, data, _, _ in BAD_FILES if case == name)
    result = parse_directory(data)
    assert result.problems == []
    assert result.directory is not None


#: Problems the table of bad files does not show: values too long for their column, and the
#: rarer holiday and time-zone cases. (name, file, line, a part of the message)
MORE_PROBLEMS: list[tuple[str, str | bytes, int, str]] = [
    (
        "district code too long",
        to_csv([{**r, "district_code": "n" * 33} for r in base_rows()]),
        2,
        "district_code 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn' must be 1 to 32 letters",
    ),
    (
        "district name too long",
        to_csv([{**r, "district_name": "N" * 201} for r in base_rows()]),
        2,
        "district_name is longer than 200 characters",
    ),
    (
        "school name too long",
        to_csv(
            [
                {**r, "school_name": "S" * 201} if r["school_code"] == "102" else r
                for r in base_rows()
            ]
        ),
        6,
        "school_name is longer than 200 characters",
    ),
    ("name too long", _with(5, name="C" * 201), 5, "name is longer than 200 characters"),
    ("priority too high", _with(5, priority="1000"), 5, "priority '1000' must be a whole number"),
    ("extension too long", _with(2, extension="1" * 17), 2, "extension is longer than 16"),
    (
        "email too long",
        _with(4, email="b" * 250 + "@north.example.org"),
        4,
        "email is longer than 254 characters",
    ),
    (
        "holidays for a country without subdivisions",
        _with(2, district_holidays="AE-DU"),
        2,
        "the holidays package has no subdivisions for AE; use AE",
    ),
    (
        "holiday region too long",
        _with(2, district_holidays="BR-São Paulo Capital"),
        2,
        "district_holidays 'BR-São Paulo Capital' is longer than 16 characters",
    ),
    (
        "school code too long",
        _with(6, school_code="1" * 17),
        6,
        "must be 1 to 16 digits",
    ),
    (
        "duty email too long",
        _duty(email="z" * 250 + "@hotline.example.org"),
        7,
        "email is longer than 254 characters",
    ),
]


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [pytest.param(data, line, message, id=name) for name, data, line, message in MORE_PROBLEMS],
)
def test_more_problems_are_found_at_their_line(data: str | bytes, line: int, message: str) -> None:
    result = parse_directory(data)
    assert result.directory is None
    found = [(p.line, p.message) for p in result.problems]
    assert any(p_line == line and message in text_ for p_line, text_ in found), found


def test_longest_values_that_fit_are_accepted() -> None:
    """The limits above are the models' column widths, not one character less."""
    rows = base_rows()
    rows[0].update(extension="1" * 16)
    rows[3].update(name="C" * 200, priority="999")
    rows[2].update(email="b" * 236 + "@north.example.org")  # 254 characters
    rows[4].update(school_code="1" * 16)
    rows = [{**r, "district_code": "n" * 32, "district_name": "N" * 200} for r in rows]
    result = parse_directory(to_csv(rows))
    assert result.problems == []
    assert result.directory is not None


def test_time_zone_country_without_a_holiday_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``holidays`` release without the time zone's country: the district must name its
    calendar itself."""
    calendars = {k: v for k, v in parse._holiday_calendars().items() if k != "US"}
    monkeypatch.setattr(parse, "_holiday_calendars", lambda: calendars)
    rows = [{**r, "district_holidays": ""} for r in base_rows()]
    result = parse_directory(to_csv(rows))
    assert [str(p) for p in result.problems] == [
        "line 2: the holidays package has no calendar for US, the country of America/Chicago: "
        "give district_holidays for district north"
    ]


def test_a_broken_district_is_reported_once_not_on_every_number() -> None:
    """Without a time zone or holidays to tell the country, national numbers cannot be read:
    that is the district's one problem, not one more per row. An emergency number needs no
    country, and is still refused on its own line."""
    rows = [
        {**r, "district_timezone": "Mars/Olympus", "district_holidays": ""} for r in base_rows()
    ]
    rows[1]["phone"] = "911"  # line 3
    result = parse_directory(to_csv(rows))
    assert [(p.line, p.message.split(" ")[0]) for p in result.problems] == [
        (2, "district_timezone"),
        (3, "phone"),
    ]
    assert "'911' is an emergency number" in result.problems[1].message


def test_a_row_with_several_problems_lists_each_in_column_order() -> None:
    rows = base_rows()
    rows[2].update(role="principal", priority="", name="", phone="", sms="", email="x")
    result = parse_directory(to_csv(rows))
    assert [(p.line, p.message.split(" ")[0]) for p in result.problems] == [
        (4, "role"),
        (4, "priority"),
        (4, "name"),
        (4, "phone"),
        (4, "sms"),
        (4, "email"),
    ]


# Line numbers -------------------------------------------------------------------------------------


def test_blank_lines_before_the_header_count() -> None:
    rows = base_rows()
    rows[2]["sms"] = "maybe"  # the third contact: line 4 of the file, 6 after two blank lines
    result = parse_directory("\n  \n" + to_csv(rows))
    assert [str(p) for p in result.problems] == ["line 6: sms 'maybe' must be yes or no"]
    header_only = parse_directory("\n\n" + ",".join(COLUMNS) + "\n")
    assert [(p.line, p.message) for p in header_only.problems] == [
        (3, "the file has a header but no contacts")
    ]


def test_rows_after_a_bad_row_keep_their_lines() -> None:
    """A row with too many values is reported and skipped; the rows after it are still read and
    checked, at their own lines."""
    data = _plus(school_row("103", "North Annex", "Gus Oh", "(312) 555-0131", priority="x"))
    data = data.replace("Cy Diaz,", "Cy, Diaz,")  # line 5
    result = parse_directory(data)
    assert [(p.line, p.message.split(" ")[0]) for p in result.problems] == [
        (5, "15"),
        (7, "priority"),
    ]


def test_checked_records_carry_their_lines() -> None:
    rows = [*base_rows(), *duty_rows()]
    rows.insert(2, school_row("103", "North Annex", "Gus Oh", "(312) 555-0131"))  # line 4
    result = parse_directory(to_csv(rows))
    assert result.problems == []
    directory = result.directory
    assert directory is not None
    assert [(c.line, c.name) for c in directory.contacts] == [
        (2, "Ann Lee"),
        (3, "North Dispatch"),
        (4, "Gus Oh"),
        (5, "Bo Park"),
        (6, "Cy Diaz"),
        (7, "Di Wu"),
        (8, "Zoe Hart"),
        (9, "Yan Li"),
    ]
    # A district and a school are where the file first names them.
    assert [(d.code, d.line) for d in directory.districts] == [("north", 2)]
    assert [(s.code, s.line) for s in directory.schools] == [("103", 4), ("101", 5), ("102", 7)]


def test_a_problem_reads_as_its_line() -> None:
    result = parse_directory(_with(4, sms="maybe"))
    assert [str(p) for p in result.problems] == ["line 4: sms 'maybe' must be yes or no"]


# Cases moved from the import tests ------------------------------------------------------------


def test_every_bad_file_case_is_otherwise_valid() -> None:
    """Guard for the table above: the base file and its additions really are valid, so each
    case tests the one thing it names."""
    assert parse_directory(to_csv(base_rows())).problems == []
    south = _plus(
        row(district_code="south", district_name="South District", phone="(312) 555-0290"),
        school_row(
            "201",
            "South High",
            "Ed Fox",
            "(312) 555-0211",
            district_code="south",
            district_name="South District",
        ),
    )
    assert parse_directory(south).problems == []
    assert parse_directory(_plus(*duty_rows())).problems == []
    assert parse_directory(to_csv(duty_rows())).problems == []


def test_all_problems_are_collected_in_line_order() -> None:
    rows = [{**r, "district_timezone": "Mars/Olympus"} for r in base_rows()]  # from line 2
    rows[2]["phone"] = "911"  # line 4
    rows[2]["sms"] = "sometimes"  # line 4 again
    rows[4]["priority"] = "0"  # line 6
    result = parse_directory(to_csv(rows))
    assert result.directory is None
    assert [(p.line, p.message.split(" ")[0]) for p in result.problems] == [
        (2, "district_timezone"),
        (4, "phone"),
        (4, "sms"),
        (6, "priority"),
    ]
    assert str(result.problems[0]).startswith("line 2: district_timezone 'Mars/Olympus'")


@pytest.mark.parametrize("number", ["911", "311"])
def test_n11_numbers_are_refused_with_the_psap_explained(number: str) -> None:
    result = parse_directory(_with(3, phone=number))
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.line == 3
    assert number in problem.message
    assert "PSAP is reached on its 10-digit administrative line" in problem.message


def test_phone_region_comes_from_the_district_time_zone() -> None:
    """No district_holidays column at all: the country (for holidays and for reading national
    numbers) is the time zone's."""
    rows = [
        {k: v for k, v in r.items() if k != "district_holidays"}
        | {"district_timezone": "America/Denver", "phone": r["phone"].replace("312", "303")}
        for r in base_rows()
    ]
    columns = [c for c in COLUMNS if c != "district_holidays"]
    result = parse_directory(to_csv(rows, columns))
    assert result.problems == []
    assert result.directory is not None
    assert result.directory.districts[0].holiday_region == "US"
    assert {c.e164[:5] for c in result.directory.contacts} == {"+1303"}


def test_extension_in_the_phone_column_is_kept() -> None:
    result = parse_directory(_with(2, phone="(312) 555-0101 ext. 204"))
    assert result.directory is not None
    first = result.directory.contacts[0]
    assert (first.e164, first.extension) == ("+13125550101", "204")


def test_psap_coverage_school_row_or_district_row() -> None:
    no_psap = [r for r in base_rows() if r["role"] != "psap"]
    result = parse_directory(to_csv(no_psap))
    assert [str(p) for p in result.problems] == [
        "line 3: school 101 (North High) is not covered by a PSAP: add a psap row for it or a "
        "district-wide psap row for district north",
        "line 5: school 102 (North Middle) is not covered by a PSAP: add a psap row for it or a "
        "district-wide psap row for district north",
    ]
    # One school's own PSAP covers it and only it.
    own = [*no_psap, row(school_code="101", school_name="North High")]
    assert [p.line for p in parse_directory(to_csv(own)).problems] == [5]
    both = [*own, row(school_code="102", school_name="North Middle")]
    assert parse_directory(to_csv(both)).problems == []


def test_bom_whitespace_blank_lines_and_line_numbers() -> None:
    body = to_csv(base_rows())
    lines = body.splitlines()
    padded = ["  " + " , ".join(c for c in lines[0].split(",")) + "  "]
    padded += [" , ".join(line.split(",")) for line in lines[1:]]
    data = ("\ufeff" + "\n\n".join(padded) + "\n\n\n").encode("utf-8")
    result = parse_directory(data)
    assert result.problems == []
    assert result.directory is not None
    assert [c.line for c in result.directory.contacts] == [3, 5, 7, 9, 11]
    assert result.directory.contacts[2].name == "Bo Park"


def test_line_numbers_count_physical_lines_of_quoted_values() -> None:
    rows = base_rows()
    rows[1]["name"] = "North Dispatch\n(admin line)"  # line 3 spans lines 3 and 4
    rows[3]["priority"] = "zero"  # the fifth row starts on line 6
    result = parse_directory(to_csv(rows))
    assert [(p.line, p.message.split(" ")[0]) for p in result.problems] == [(6, "priority")]


def test_crlf_and_header_case_are_accepted() -> None:
    data = to_csv(base_rows()).replace("\n", "\r\n").replace("district_code", "District_Code", 1)
    assert parse_directory(data).problems == []


# The parser needs no database ---------------------------------------------------------------------


def test_the_parser_imports_nothing_that_reaches_a_database() -> None:
    """The split's promise: parse.py reads and checks, and only apply.py talks to the database."""
    tree = ast.parse(inspect.getsource(parse))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
    forbidden = {"sqlalchemy", "hotline.db", "hotline.directory.apply", "flask", "hotline.services"}
    assert not {
        name for name in imported if any(name == f or name.startswith(f + ".") for f in forbidden)
    }, imported
    # What the parser needs from the models is the vocabulary of roles, nothing that queries.
    models_used: list[Any] = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "hotline.models"
        for alias in node.names
    ]
    assert models_used == ["ContactRole"]


# School aliases -----------------------------------------------------------------------------------


def test_school_aliases_are_read_on_any_row_of_the_school() -> None:
    data = _plus(
        school_row("101", "North High", "Ann Bo", "(312) 555-0141", school_aliases="NHS; the Hill;")
    )
    result = parse_directory(data)
    assert result.problems == []
    assert result.directory is not None
    [north_high] = [s for s in result.directory.schools if s.code == "101"]
    assert north_high.aliases == ("NHS", "the Hill")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"school_aliases": "NHS"}, "school_aliases without a school_code"),
        (
            {
                "school_code": "101",
                "school_name": "North High",
                "school_aliases": ";".join(f"N{i}" for i in range(11)),
            },
            "more than 10",
        ),
        (
            {"school_code": "101", "school_name": "North High", "school_aliases": "x" * 201},
            "longer than 200",
        ),
    ],
)
def test_bad_school_aliases_are_refused(overrides: dict[str, str], message: str) -> None:
    result = parse_directory(_plus(row(**overrides)))
    assert any(message in p.message for p in result.problems), result.problems


def test_differing_school_aliases_are_refused() -> None:
    data = _plus(
        school_row("101", "North High", "Ann Bo", "(312) 555-0141", school_aliases="NHS"),
        school_row("101", "North High", "Cal Do", "(312) 555-0142", school_aliases="the Hill"),
    )
    assert any("differ from" in p.message for p in parse_directory(data).problems)
