"""Importing a directory file: :func:`import_directory` parses and checks it
(:mod:`hotline.directory.parse`), then applies it (:mod:`hotline.directory.apply`) in one
transaction, all of it or none of it; and the sample directory ``make run`` loads.

A file with problems changes nothing; every problem comes back with its line number. The file's
format and how a re-import matches contacts are in ``docs/operations.md`` (the directory CSV).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from hotline.core.clock import Clock
from hotline.db import Database
from hotline.directory.apply import (
    ImportSummary,
    apply_directory,
    directory_has_anything,
    lock_directory,
)
from hotline.directory.parse import Problem, parse_directory

#: Where the sample directory lives, inside the ``hotline`` package.
SAMPLE_DIRECTORY = "hotline/sample/directory.csv"


@dataclass(frozen=True)
class ImportResult:
    problems: list[Problem]
    #: None when there were problems (nothing changed) or the import was skipped.
    summary: ImportSummary | None
    dry_run: bool = False
    #: ``only_if_empty`` found districts or contacts already there and did nothing.
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


class DirectoryServices(Protocol):
    """What importing needs from the app's services (:class:`hotline.services.Hotline`)."""

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...


def import_directory(
    db: Database,
    clock: Clock,
    data: str | bytes,
    *,
    dry_run: bool = False,
    only_if_empty: bool = False,
) -> ImportResult:
    """Parse, check and apply a directory file in one transaction: all of it or none of it.

    ``dry_run`` checks against the database and reports what would change, then rolls back.
    ``only_if_empty`` does nothing when any district or contact exists (checked under the import
    lock, so two processes starting at once load a sample once). Duty contacts count: a directory
    holding only the real duty line must not get the sample's duty rows in their place.
    """
    parsed = parse_directory(data)
    if parsed.directory is None:
        return ImportResult(parsed.problems, None, dry_run=dry_run)
    with db.sessionmaker() as session:
        try:
            lock_directory(session)
            if only_if_empty and directory_has_anything(session):
                session.rollback()
                return ImportResult([], None, dry_run=dry_run, skipped=True)
            summary, problems = apply_directory(session, parsed.directory, clock.now())
            if problems or dry_run:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
    return ImportResult(problems, summary if not problems else None, dry_run=dry_run)


def sample_directory() -> bytes:
    """The sample directory shipped with the package (two fictional districts)."""
    return (resources.files("hotline") / "sample" / "directory.csv").read_bytes()


def load_sample_if_empty(services: DirectoryServices) -> bool:
    """Import the sample directory when there are no districts or contacts yet (the embedded
    default's first start). True when it was loaded."""
    result = import_directory(services.db, services.clock, sample_directory(), only_if_empty=True)
    if result.problems:
        # The sample is part of the package: a problem here is a bug, not an operator's mistake.
        raise RuntimeError(
            "the sample directory does not import:\n" + "\n".join(str(p) for p in result.problems)
        )
    return not result.skipped
