"""Applying a checked directory to the database: the checks only the database can make, then
the districts, schools, phone numbers and contacts of the file made to match it, in the caller's
transaction.

What comes in is a :class:`hotline.directory.parse.Directory`, already checked line by line. A
school code the database gives to another district is the one problem found here; then nothing
is written. Otherwise each district in the file gets exactly the file's schools and contacts, and
the duty contacts too when the file has duty rows; a file without any leaves them alone, so a
district's file never empties the duty line. Districts not in the file are left alone.

Identity on re-import: a contact is the same contact when its district, school (none for
district-wide rows), role and name (case and spacing ignored) are the same; for a duty contact,
role and name. A new principal is therefore a new contact and the old one is deactivated rather
than overwritten, so the history of calls made to the old principal still names the person who was
called; a changed phone number, priority, e-mail or SMS choice of the same person is an update.
Nothing is ever deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, text
from sqlalchemy.orm import Session

from hotline.directory.parse import ContactKey, Directory, Problem, name_key
from hotline.models import Contact, ContactRole, District, PhoneNumber, School

#: Key for PostgreSQL's transaction-level advisory lock: two imports at once queue up instead of
#: both creating the same district or phone number and one failing on a unique constraint.
_IMPORT_LOCK_KEY = 0x686F746C696E6544  # "hotlineD"


# Results --------------------------------------------------------------------------------------


@dataclass
class Counts:
    """What an import did to the schools, or to the contacts, of the file."""

    added: int = 0
    updated: int = 0
    reactivated: int = 0
    deactivated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return any((self.added, self.updated, self.reactivated, self.deactivated))

    def __str__(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.reactivated} reactivated, "
            f"{self.deactivated} deactivated, {self.unchanged} unchanged"
        )


@dataclass
class ImportSummary:
    districts_added: int = 0
    districts_updated: int = 0
    districts_unchanged: int = 0
    schools: Counts = field(default_factory=Counts)
    #: The contacts of the file's districts.
    contacts: Counts = field(default_factory=Counts)
    #: The duty contacts; counted only when the file has duty rows (otherwise left alone).
    duty: Counts = field(default_factory=Counts)
    duty_in_file: bool = False
    phone_numbers_added: int = 0

    @property
    def changed(self) -> bool:
        return any(
            (
                self.districts_added,
                self.districts_updated,
                self.schools.changed,
                self.contacts.changed,
                self.duty.changed,
                self.phone_numbers_added,
            )
        )

    def lines(self) -> list[str]:
        return [
            f"districts: {self.districts_added} added, {self.districts_updated} updated, "
            f"{self.districts_unchanged} unchanged",
            f"schools: {self.schools}",
            f"contacts: {self.contacts}",
            f"duty contacts: {self.duty}"
            if self.duty_in_file
            else "duty contacts: no duty rows in the file, left as they are",
            f"phone numbers: {self.phone_numbers_added} added",
        ]

    def __str__(self) -> str:
        return "\n".join(self.lines())


# Directory queries shared with the exporter and the importer ----------------------------------


def duty_contact() -> ColumnElement[bool]:
    """The duty contacts among the contacts (active or not): role duty, no district."""
    return and_(Contact.role == ContactRole.DUTY, Contact.district_id.is_(None))


def lock_directory(session: Session) -> None:
    """Queue up behind any other import in progress, until ``session``'s transaction ends
    (PostgreSQL; SQLite has one writer at a time anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IMPORT_LOCK_KEY})


# Applying -------------------------------------------------------------------------------------


def _ownership_problems(session: Session, directory: Directory) -> list[Problem]:
    """School codes in the file that the database gives to another district (active or not: the
    code stays that school's, and its tips with it)."""
    wanted = {s.code: s for s in directory.schools}
    if not wanted:
        return []
    rows = session.execute(
        select(School.code, School.active, District.code)
        .join(District, School.district_id == District.id)
        .where(School.code.in_(wanted))
    ).all()
    problems = []
    for code, active, owner in rows:
        entry = wanted[code]
        if owner != entry.district_code:
            state = "" if active else " (deactivated)"
            problems.append(
                Problem(
                    entry.line,
                    f"school_code {code} belongs to district {owner}{state} in the directory: "
                    "school codes are unique across all districts (callers key them in)",
                )
            )
    return sorted(problems)


def apply_directory(
    session: Session, directory: Directory, now: datetime
) -> tuple[ImportSummary | None, list[Problem]]:
    """Make the directory of every district in ``directory`` match it (and the duty contacts, when
    it has duty rows), in ``session``'s transaction (the caller commits). Returns the problems
    only the database reveals instead; then nothing was written."""
    problems = _ownership_problems(session, directory)
    if problems:
        return None, problems
    summary = ImportSummary(duty_in_file=any(c.district_code is None for c in directory.contacts))
    districts = _apply_districts(session, directory, now, summary)
    schools, school_codes_by_id = _apply_schools(session, directory, districts, now, summary)
    phones = _apply_phone_numbers(session, directory, now, summary)
    _apply_contacts(
        session, directory, districts, schools, school_codes_by_id, phones, now, summary
    )
    session.flush()
    return summary, []


def _apply_districts(
    session: Session, directory: Directory, now: datetime, summary: ImportSummary
) -> dict[str, District]:
    codes = [d.code for d in directory.districts]
    existing = {
        d.code: d for d in session.scalars(select(District).where(District.code.in_(codes)))
    }
    districts: dict[str, District] = {}
    for entry in directory.districts:
        district = existing.get(entry.code)
        if district is None:
            district = District(
                code=entry.code,
                name=entry.name,
                timezone=entry.timezone,
                holiday_region=entry.holiday_region,
                active=True,
                created_at=now,
                updated_at=now,
            )
            session.add(district)
            summary.districts_added += 1
        elif (district.name, district.timezone, district.holiday_region, district.active) != (
            entry.name,
            entry.timezone,
            entry.holiday_region,
            True,
        ):
            # Only what the file says changes: business hours, escalation style and the other
            # settings an administrator set for the district are kept.
            district.name = entry.name
            district.timezone = entry.timezone
            district.holiday_region = entry.holiday_region
            district.active = True
            district.updated_at = now
            summary.districts_updated += 1
        else:
            summary.districts_unchanged += 1
        districts[entry.code] = district
    session.flush()
    return districts


def _apply_schools(
    session: Session,
    directory: Directory,
    districts: dict[str, District],
    now: datetime,
    summary: ImportSummary,
) -> tuple[dict[str, School], dict[int, str]]:
    """Every school of the file's districts by code (file and database), and the codes of the
    schools that were there before, by id."""
    district_ids = [d.id for d in districts.values()]
    schools: dict[str, School] = {
        s.code: s
        for s in session.scalars(select(School).where(School.district_id.in_(district_ids)))
    }
    codes_by_id = {s.id: s.code for s in schools.values()}
    for entry in directory.schools:
        school = schools.get(entry.code)
        if school is None:
            school = School(
                district_id=districts[entry.district_code].id,
                code=entry.code,
                name=entry.name,
                aliases=list(entry.aliases),
                active=True,
                created_at=now,
                updated_at=now,
            )
            session.add(school)
            schools[entry.code] = school
            summary.schools.added += 1
        elif not school.active:
            school.active = True
            school.name = entry.name
            school.aliases = list(entry.aliases)
            school.updated_at = now
            summary.schools.reactivated += 1
        elif school.name != entry.name or list(school.aliases) != list(entry.aliases):
            school.name = entry.name
            school.aliases = list(entry.aliases)
            school.updated_at = now
            summary.schools.updated += 1
        else:
            summary.schools.unchanged += 1
    in_file = {s.code for s in directory.schools}
    for code, school in schools.items():
        if code not in in_file and school.active:
            school.active = False
            school.updated_at = now
            summary.schools.deactivated += 1
    session.flush()
    return schools, codes_by_id


def _apply_phone_numbers(
    session: Session, directory: Directory, now: datetime, summary: ImportSummary
) -> dict[str, PhoneNumber]:
    """Found or created by E.164: one row per line however many contacts share it, so opt-out
    and bad-number state stay with the number."""
    wanted = sorted({c.e164 for c in directory.contacts})
    phones = {
        p.e164: p for p in session.scalars(select(PhoneNumber).where(PhoneNumber.e164.in_(wanted)))
    }
    for e164 in wanted:
        if e164 not in phones:
            phones[e164] = PhoneNumber(e164=e164, created_at=now)
            session.add(phones[e164])
            summary.phone_numbers_added += 1
    session.flush()
    return phones


def _apply_contacts(
    session: Session,
    directory: Directory,
    districts: dict[str, District],
    schools: dict[str, School],
    school_codes_by_id: dict[int, str],
    phones: dict[str, PhoneNumber],
    now: datetime,
    summary: ImportSummary,
) -> None:
    """The contacts of the file's districts, and the duty contacts when the file has duty rows
    (``summary.duty_in_file``): added, updated, reactivated or deactivated to match the file."""
    district_codes_by_id = {d.id: code for code, d in districts.items()}
    in_scope: ColumnElement[bool] = Contact.district_id.in_(list(district_codes_by_id))
    if summary.duty_in_file:
        in_scope = or_(in_scope, duty_contact())
    current: dict[ContactKey, list[Contact]] = {}
    for existing in session.scalars(select(Contact).where(in_scope).order_by(Contact.id)):
        school_code = (
            school_codes_by_id.get(existing.school_id) if existing.school_id is not None else None
        )
        key: ContactKey = (
            district_codes_by_id[existing.district_id]
            if existing.district_id is not None
            else None,
            school_code,
            existing.role,
            name_key(existing.name),
        )
        current.setdefault(key, []).append(existing)

    kept: set[int] = set()
    for entry in directory.contacts:
        candidates = current.get(entry.key, [])
        # The active one if any (there is at most one after an import); otherwise the latest,
        # so a returning contact keeps its history.
        contact = next((c for c in candidates if c.active), candidates[-1] if candidates else None)
        phone = phones[entry.e164]
        counts = summary.contacts if entry.district_code is not None else summary.duty
        if contact is None:
            school = schools[entry.school_code] if entry.school_code else None
            session.add(
                Contact(
                    district_id=(
                        districts[entry.district_code].id
                        if entry.district_code is not None
                        else None
                    ),
                    school_id=school.id if school is not None else None,
                    role=entry.role,
                    priority=entry.priority,
                    name=entry.name,
                    phone_number_id=phone.id,
                    extension=entry.extension,
                    sms=entry.sms,
                    email=entry.email,
                    active=True,
                    deactivated_at=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            counts.added += 1
            continue
        kept.add(contact.id)
        stored = (
            contact.priority,
            contact.name,
            contact.phone_number_id,
            contact.extension,
            contact.sms,
            contact.email,
        )
        wanted = (entry.priority, entry.name, phone.id, entry.extension, entry.sms, entry.email)
        if contact.active and stored == wanted:
            counts.unchanged += 1
            continue
        if contact.active:
            counts.updated += 1
        else:
            counts.reactivated += 1
        contact.priority = entry.priority
        contact.name = entry.name
        contact.phone_number_id = phone.id
        contact.extension = entry.extension
        contact.sms = entry.sms
        contact.email = entry.email
        contact.active = True
        contact.deactivated_at = None
        contact.updated_at = now

    for same_key in current.values():
        for contact in same_key:
            if contact.id not in kept and contact.active:
                # Deactivated, never deleted: calls, confirmations and timelines refer to it.
                contact.active = False
                contact.deactivated_at = now
                contact.updated_at = now
                counts = summary.contacts if contact.district_id is not None else summary.duty
                counts.deactivated += 1


def directory_has_anything(session: Session) -> bool:
    """Any district or contact at all, active or not (duty contacts count)."""
    return any(
        session.scalar(select(column).limit(1)) is not None for column in (District.id, Contact.id)
    )
