"""The directory of districts, schools and contacts (and the hotline's own duty contacts): CSV
import and export (DESIGN.md section 5).

The CLI lives in :mod:`hotline.directory.cli` (imported separately: it needs Flask's app context).
"""

from __future__ import annotations

from hotline.directory.exporter import directory_rows, export_directory, write_directory
from hotline.directory.importer import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    Counts,
    Directory,
    ImportResult,
    ImportSummary,
    ParseResult,
    Problem,
    apply_directory,
    import_directory,
    load_sample_if_empty,
    parse_directory,
    sample_directory,
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
