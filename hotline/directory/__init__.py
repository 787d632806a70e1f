"""The directory of districts, schools and contacts (and the hotline's own duty contacts): CSV
import and export.

Reading and checking a file is pure (:mod:`hotline.directory.parse`); applying it needs the
database (:mod:`hotline.directory.apply`); :mod:`hotline.directory.importer` does both in one
transaction, and :mod:`hotline.directory.exporter` writes the directory back in the same format.
The CLI lives in :mod:`hotline.directory.cli` (imported separately: it needs Flask's app context).
"""

from __future__ import annotations

from hotline.directory.apply import Counts, ImportSummary, apply_directory
from hotline.directory.exporter import directory_rows, export_directory, write_directory
from hotline.directory.importer import (
    ImportResult,
    import_directory,
    load_sample_if_empty,
    sample_directory,
)
from hotline.directory.parse import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    Directory,
    ParseResult,
    Problem,
    parse_directory,
)

__all__ = [
    "COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Counts",
    "Directory",
    "ImportResult",
    "ImportSummary",
    "ParseResult",
    "Problem",
    "apply_directory",
    "directory_rows",
    "export_directory",
    "import_directory",
    "load_sample_if_empty",
    "parse_directory",
    "sample_directory",
    "write_directory",
]
