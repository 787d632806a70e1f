"""Directory files for the tests: a valid base file, rows to change in it, and the table of bad
files with the line and message each must be reported with.

Shared by the parser's unit tests (``test_directory_parse.py``, no database) and the import tests
(``test_directory.py``, which check that a bad file changes nothing in the database).
"""

from __future__ import annotations

import csv
import io

from hotline.directory import COLUMNS


def row(**overrides: str) -> dict[str, str]:
    """A valid row: district north's district-wide PSAP, with ``overrides`` (known columns only)."""
    base = {
        "district_code": "north",
        "district_name": "North District",
        "district_timezone": "America/Chicago",
        "school_code": "",
        "school_name": "",
        "role": "psap",
        "priority": "1",
        "name": "North Dispatch",
        "phone": "(312) 555-0190",
        "sms": "no",
        "email": "",
        "district_holidays": "US-IL",
        "extension": "",
        "school_aliases": "",
    }
    unknown = set(overrides) - set(base)
    assert not unknown, unknown
    base.update(overrides)
    return base


def school_row(code: str, school: str, name: str, phone: str, **overrides: str) -> dict[str, str]:
    """A valid school_contact row of district north, e-mail made from the name."""
    values = {
        "school_code": code,
        "school_name": school,
        "role": "school_contact",
        "name": name,
        "phone": phone,
        "sms": "yes",
        "email": name.lower().replace(" ", ".") + "@north.example.org",
    }
    values.update(overrides)
    return row(**values)


#: The columns a duty row leaves empty: every district and school column.
DUTY_EMPTY = tuple(c for c in COLUMNS if c.startswith(("district_", "school_")))


def duty_row(name: str, phone: str, **overrides: str) -> dict[str, str]:
    """A duty row: the hotline's own supervisor, no district and no school."""
    email = name.lower().replace(" ", ".") + "@hotline.example.org"
    empty = dict.fromkeys(DUTY_EMPTY, "")
    return row(
        **empty
        | {"role": "duty", "name": name, "phone": phone, "sms": "yes", "email": email}
        | overrides
    )


def duty_rows() -> list[dict[str, str]]:
    return [
        duty_row("Zoe Hart", "+1 312 555 0150"),
        duty_row("Yan Li", "+1 (312) 555-0151", priority="2", sms="no"),
    ]


def base_rows() -> list[dict[str, str]]:
    """A valid file: lines 2 to 6."""
    return [
        row(
            role="district_contact",
            name="Ann Lee",
            phone="(312) 555-0101",
            sms="yes",
            email="ann.lee@north.example.org",
        ),  # line 2
        row(),  # line 3
        school_row("101", "North High", "Bo Park", "(312) 555-0111"),  # line 4
        school_row("101", "North High", "Cy Diaz", "(312) 555-0112", priority="2"),  # line 5
        school_row("102", "North Middle", "Di Wu", "(312) 555-0121"),  # line 6
    ]


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...] | list[str] = COLUMNS) -> str:
    """The rows as a file, header on line 1 and one row per line after it."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def with_row(line: int, **overrides: str) -> str:
    """The base file with the row on ``line`` changed."""
    rows = base_rows()
    rows[line - 2] = {**rows[line - 2], **overrides}
    return to_csv(rows)


def plus_rows(*extra: dict[str, str]) -> str:
    """The base file and ``extra`` rows after it, from line 7 on."""
    return to_csv([*base_rows(), *extra])


def plus_duty_row(phone: str = "+1 312 555 0150", **overrides: str) -> str:
    """The base file and one duty row, on line 7."""
    return plus_rows(duty_row("Zoe Hart", phone, **overrides))


#: (name, file, line, a part of the message): each file has one thing wrong, most of them the
#: base file with one value changed or one row added.
BAD_FILES: list[tuple[str, str | bytes, int, str]] = [
    ("empty", "", 1, "the file is empty"),
    ("only blank lines", "\n  \n\n", 1, "the file is empty"),
    ("header only", ",".join(COLUMNS) + "\n", 1, "has a header but no contacts"),
    (
        "missing column",
        to_csv(base_rows(), [c for c in COLUMNS if c != "sms"]),
        1,
        "missing required column(s): sms",
    ),
    ("no header", plus_rows().split("\n", 1)[1], 1, "the first line is not a header"),
    ("unknown column", to_csv(base_rows(), [*COLUMNS, "fax"]), 1, "unknown column(s) 'fax'"),
    ("duplicate column", ",".join([*COLUMNS, "email"]) + "\n", 1, "column 'email' appears twice"),
    (
        "nameless column",
        ",".join([*COLUMNS[:3], "", *COLUMNS[3:]]) + "\n",
        1,
        "column 4 of the header has no name",
    ),
    (
        "too many values",
        plus_rows().replace("Cy Diaz,", "Cy, Diaz,"),
        5,
        "15 values but the header has 14 columns",
    ),
    ("unterminated quote", plus_rows().replace("Di Wu", '"Di Wu'), 6, "the CSV cannot be read"),
    (
        "not utf-8",
        plus_rows().encode().replace(b"North Dispatch", b"North Disp\xe4tch"),
        3,
        "not UTF-8",
    ),
    ("district code missing", with_row(4, district_code=""), 4, "district_code is required"),
    (
        "district code spaces",
        with_row(2, district_code="north east"),
        2,
        "district_code 'north east' must be",
    ),
    ("district name missing", with_row(2, district_name=""), 2, "district_name is required"),
    ("timezone missing", with_row(2, district_timezone=""), 2, "district_timezone is required"),
    (
        "timezone unknown",
        with_row(2, district_timezone="America/Chicgo"),
        2,
        "district_timezone 'America/Chicgo' is not an IANA time zone",
    ),
    (
        "timezone case",
        with_row(2, district_timezone="america/chicago"),
        2,
        "did you mean America/Chicago?",
    ),
    (
        "timezone without country",
        to_csv([{**r, "district_timezone": "UTC", "district_holidays": ""} for r in base_rows()]),
        2,
        "cannot tell the country of time zone 'UTC'",
    ),
    (
        "holidays unknown country",
        with_row(2, district_holidays="XX"),
        2,
        "no calendar for country 'XX'",
    ),
    (
        "holidays unknown subdivision",
        with_row(2, district_holidays="US-ZZ"),
        2,
        "US has no subdivision 'ZZ'",
    ),
    (
        "district name differs",
        with_row(4, district_name="North USD"),
        4,
        "district_name 'North USD' differs from 'North District' on line 2",
    ),
    (
        "timezone differs",
        with_row(5, district_timezone="America/Denver"),
        5,
        "district_timezone 'America/Denver' differs from 'America/Chicago' on line 2",
    ),
    (
        "holidays differ",
        with_row(6, district_holidays="US-IN"),
        6,
        "district_holidays 'US-IN' differs from 'US-IL' on line 2",
    ),
    ("role unknown", with_row(4, role="principal"), 4, "role 'principal' is not one of"),
    ("role missing", with_row(4, role=""), 4, "role is required"),
    ("priority zero", with_row(5, priority="0"), 5, "priority '0' must be a whole number"),
    ("priority negative", with_row(5, priority="-1"), 5, "priority '-1' must be a whole number"),
    ("priority decimal", with_row(5, priority="1.5"), 5, "priority '1.5' must be a whole number"),
    ("priority words", with_row(5, priority="first"), 5, "priority 'first' must be a whole number"),
    ("priority missing", with_row(5, priority=""), 5, "priority is required"),
    (
        "school contact without school",
        with_row(4, school_code="", school_name=""),
        4,
        "school_code is required for a school_contact row",
    ),
    (
        "district contact with school",
        with_row(2, school_code="101", school_name="North High"),
        2,
        "a district_contact row is district-wide",
    ),
    (
        "school name without code",
        with_row(3, school_name="North High"),
        3,
        "school_name 'North High' without a school_code",
    ),
    (
        "school code without name",
        with_row(5, school_name=""),
        5,
        "school_name is required with school_code 101",
    ),
    (
        "school code not digits",
        with_row(6, school_code="N-102"),
        6,
        "school_code 'N-102' must be 1 to 16 digits",
    ),
    (
        "school name differs",
        with_row(5, school_name="North High School"),
        5,
        "school_name 'North High School' differs from 'North High' on line 4",
    ),
    (
        "school code in two districts",
        plus_rows(
            row(district_code="south", district_name="South District", phone="(312) 555-0290"),
            school_row(
                "101",
                "South High",
                "Ed Fox",
                "(312) 555-0211",
                district_code="south",
                district_name="South District",
            ),
        ),
        8,
        "school_code 101 is already used by district north on line 4",
    ),
    ("sms other", with_row(4, sms="maybe"), 4, "sms 'maybe' must be yes or no"),
    ("sms missing", with_row(4, sms=""), 4, "sms is required (yes or no)"),
    ("email missing", with_row(4, email=""), 4, "email is required for a school_contact row"),
    (
        "pio email missing",
        plus_rows(row(role="pio", name="Press Office", phone="(312) 555-0104", email="")),
        7,
        "email is required for a pio row",
    ),
    ("email two at", with_row(4, email="bo@@north.example.org"), 4, "is not an e-mail address"),
    ("email space", with_row(4, email="bo park@north.example.org"), 4, "is not an e-mail address"),
    ("email no dot", with_row(4, email="bo@localhost"), 4, "has no valid domain"),
    ("phone missing", with_row(4, phone=""), 4, "phone is required"),
    ("phone words", with_row(4, phone="call the office"), 4, "is not a phone number"),
    ("phone too short", with_row(4, phone="555-0111"), 4, "'555-0111' is not a valid number in US"),
    ("phone bad area code", with_row(4, phone="(012) 555-0111"), 4, "is not a valid number"),
    ("phone 911", with_row(3, phone="911"), 3, "'911' is an emergency number"),
    ("phone 112", with_row(3, phone="112"), 3, "'112' is an emergency number"),
    ("phone 311", with_row(3, phone="311"), 3, "'311' is an N11 short code"),
    ("phone 1-411", with_row(3, phone="1-411"), 3, "'1-411' is an N11 short code"),
    ("phone 988", with_row(3, phone="988"), 3, "'988' is a short code"),
    (
        "extension letters",
        with_row(2, extension="12a"),
        2,
        "extension '12a' may hold only digits, * and #",
    ),
    ("extension waits only", with_row(2, extension="ww"), 2, "extension 'ww' may hold only"),
    (
        "extension twice",
        with_row(2, phone="(312) 555-0101 ext. 12", extension="13"),
        2,
        "has extension 12 but the extension column says 13",
    ),
    ("name missing", with_row(5, name=""), 5, "name is required"),
    (
        "duplicate row",
        plus_rows(school_row("101", "North High", "Bo Park (cell)", "312-555-0111")),
        7,
        "duplicate of line 4: the same school_contact number +13125550111 for school 101",
    ),
    (
        "duplicate person",
        plus_rows(school_row("101", "North High", "bo  PARK", "(312) 555-0119")),
        7,
        "'bo  PARK' is already a school_contact for school 101 of district north on line 4",
    ),
    (
        "school without PSAP",
        to_csv([r for r in base_rows() if r["role"] != "psap"]),
        3,
        "school 101 (North High) is not covered by a PSAP",
    ),
    (
        "district row without district",
        with_row(3, district_code="", district_name="", district_timezone="", district_holidays=""),
        3,
        "district_code is required (only duty rows have none)",
    ),
    (
        "duty with a district",
        plus_duty_row(district_code="north"),
        7,
        "a duty row is one of the hotline's own supervisors on duty, outside any district and "
        "school: leave district_code empty",
    ),
    (
        "duty with every district column",
        plus_duty_row(
            "(312) 555-0150",
            **{k: v for k, v in row().items() if k in DUTY_EMPTY}
            | {"school_code": "101", "school_name": "North High"},
        ),
        7,
        "leave district_code, district_name, district_timezone, school_code, school_name, "
        "district_holidays empty",
    ),
    (
        "duty with a school",
        plus_duty_row(school_code="101", school_name="North High"),
        7,
        "leave school_code, school_name empty",
    ),
    (
        "duty with holidays",
        plus_duty_row(district_holidays="US-IL"),
        7,
        "leave district_holidays empty",
    ),
    ("duty email missing", plus_duty_row(email=""), 7, "email is required for a duty row"),
    ("duty email bad", plus_duty_row(email="zoe@hotline"), 7, "has no valid domain"),
    (
        "duty phone national",
        plus_duty_row("(312) 555-0150"),
        7,
        "phone '(312) 555-0150' of a duty row must start with + and the country code",
    ),
    ("duty phone words", plus_duty_row("+1 call me"), 7, "is not a phone number"),
    (
        "duty phone invalid",
        plus_duty_row("+1 012 555 0150"),
        7,
        "'+1 012 555 0150' is not a valid number",
    ),
    ("duty phone 911", plus_duty_row("911"), 7, "'911' is an emergency number"),
    ("duty phone +1 911", plus_duty_row("+1 911"), 7, "is an N11 short code"),
    ("duty phone 411", plus_duty_row("411"), 7, "'411' is an N11 short code"),
    ("duty phone missing", plus_duty_row(""), 7, "phone is required"),
    ("duty sms missing", plus_duty_row(sms=""), 7, "sms is"),
    ("duty priority missing", plus_duty_row(priority=""), 7, "priority is required"),
    ("duty extension letters", plus_duty_row(extension="x1"), 7, "extension 'x1' may hold only"),
    (
        "duty person twice",
        plus_rows(*duty_rows(), duty_row("zoe  HART", "+1 312 555 0159")),
        9,
        "'zoe  HART' is already a duty for the duty line on line 7",
    ),
    (
        "duty number twice",
        plus_rows(*duty_rows(), duty_row("Zoe Hart (cell)", "+13125550150")),
        9,
        "duplicate of line 7: the same duty number +13125550150 for the duty line",
    ),
    (
        "school code of another district in the database",
        plus_rows(school_row("1101", "North Annex", "Fay Ng", "(312) 555-0131")),
        7,
        "school_code 1101 belongs to district lakeview in the directory",
    ),
]

#: The cases of BAD_FILES only the database can find (against the sample directory, loaded).
DATABASE_ONLY = frozenset({"school code of another district in the database"})
