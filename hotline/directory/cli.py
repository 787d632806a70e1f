"""``flask --app hotline directory import FILE.csv`` and ``... directory export [FILE|-]``."""

from __future__ import annotations

import sys
from typing import BinaryIO, TextIO

import click
from flask.cli import AppGroup

from hotline.directory.exporter import write_directory
from hotline.directory.importer import import_directory, load_sample_if_empty
from hotline.services import hotline

__all__ = ["directory_cli", "load_sample_if_empty"]

directory_cli = AppGroup(
    "directory", help="The directory of districts, schools and contacts (CSV import and export)."
)


@directory_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the file against the directory and show what would change; change nothing.",
)
def import_command(file: BinaryIO, dry_run: bool) -> None:
    """Make the directory of every district in FILE (a CSV, or - for stdin) match the file, and
    the duty contacts too when FILE has duty rows.

    A file with any problem changes nothing; every problem is listed with its line number.
    """
    services = hotline()
    result = import_directory(services.db, services.clock, file.read(), dry_run=dry_run)
    if result.problems:
        for problem in result.problems:
            click.echo(f"line {problem.line}: {problem.message}", err=True)
        count = len(result.problems)
        click.echo(
            f"{file.name}: {count} problem{'s' if count != 1 else ''}; nothing was changed",
            err=True,
        )
        sys.exit(1)
    assert result.summary is not None
    if dry_run:
        click.echo("dry run: nothing was changed; importing would give")
    for line in result.summary.lines():
        click.echo(line)
    if not result.summary.changed:
        click.echo("the directory already matches the file")


@directory_cli.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8", atomic=True), default="-")
def export_command(file: TextIO) -> None:
    """Write the active directory as CSV to FILE (default -, standard output), in the import
    format: exporting and importing the result changes nothing."""
    services = hotline()
    with services.db.session() as session:
        count = write_directory(session, file)
    # On stderr, so that `export > file.csv` and `export -` keep standard output pure CSV.
    click.echo(f"exported {count} contact row{'s' if count != 1 else ''}", err=True)
