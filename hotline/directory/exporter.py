"""Directory export: the active directory as a CSV in exactly the import format.

What comes out goes back in unchanged: importing an export is a no-op, and exporting twice gives
the same bytes. So the rows are sorted on everything that identifies them (never on database ids
alone), numbers are written in E.164 and both optional columns are always present.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.directory.apply import duty_contact
from hotline.directory.parse import ALIAS_SEPARATOR, COLUMNS, name_key, role_order
from hotline.models import Contact, District, PhoneNumber, School


def directory_rows(session: Session) -> Iterator[dict[str, str]]:
    """Every active contact of an active district (and active school, for school rows), then the
    active duty contacts (their district and school columns empty)."""
    yield from _district_rows(session)
    yield from _duty_rows(session)


def _contact_cells(contact: Contact, phone: PhoneNumber) -> dict[str, str]:
    return {
        "role": contact.role.value,
        "priority": str(contact.priority),
        "name": contact.name,
        "phone": phone.e164,
        "sms": "yes" if contact.sms else "no",
        "email": contact.email or "",
        "extension": contact.extension or "",
    }


def _contact_order(contact: Contact, phone: PhoneNumber) -> tuple[int | str, ...]:
    """The escalation order (role, priority), then fields that tell two contacts apart, id last
    as a tie-break only for rows the importer would refuse anyway."""
    return (
        role_order(contact.role),
        contact.priority,
        name_key(contact.name),
        contact.name,
        phone.e164,
        contact.extension or "",
        contact.id,
    )


def _duty_rows(session: Session) -> Iterator[dict[str, str]]:
    rows = session.execute(
        select(Contact, PhoneNumber)
        .join(PhoneNumber, Contact.phone_number_id == PhoneNumber.id)
        .where(Contact.active.is_(True), duty_contact())
    ).all()
    for contact, phone in sorted(rows, key=lambda r: _contact_order(r[0], r[1])):
        yield {column: "" for column in COLUMNS} | _contact_cells(contact, phone)


def _district_rows(session: Session) -> Iterator[dict[str, str]]:
    rows = session.execute(
        select(Contact, District, School, PhoneNumber)
        .join(District, Contact.district_id == District.id)
        .outerjoin(School, Contact.school_id == School.id)
        .join(PhoneNumber, Contact.phone_number_id == PhoneNumber.id)
        .where(Contact.active.is_(True), District.active.is_(True))
    ).all()
    selected = [
        (contact, district, school, phone)
        for contact, district, school, phone in rows
        if school is None or school.active
    ]
    # District-wide rows first, then schools by code; within them the contacts' own order.
    selected.sort(
        key=lambda r: (
            r[1].code,
            r[2] is not None,
            r[2].code if r[2] is not None else "",
            _contact_order(r[0], r[3]),
        )
    )
    for contact, district, school, phone in selected:
        yield {
            "district_code": district.code,
            "district_name": district.name,
            "district_timezone": district.timezone,
            "school_code": school.code if school is not None else "",
            "school_name": school.name if school is not None else "",
            "district_holidays": district.holiday_region,
            "school_aliases": f"{ALIAS_SEPARATOR} ".join(school.aliases) if school else "",
            **_contact_cells(contact, phone),
        }


def write_directory(session: Session, out: TextIO) -> int:
    """Write the CSV to ``out`` (opened with ``newline=""`` when it is a file); returns the number
    of contact rows."""
    # Read everything before writing anything: a failed query leaves no half-written CSV on
    # standard output for a pipe to pick up.
    rows = list(directory_rows(session))
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return len(rows)


def export_directory(session: Session) -> str:
    buffer = io.StringIO()
    write_directory(session, buffer)
    return buffer.getvalue()
