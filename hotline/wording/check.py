"""The whole wording check, for the test suite and for an operator after an edit
(``python -m hotline.wording``): per language, the missing keys, the unused ones and the
placeholder mismatches.

"Used" means referred to as ``AreaKey.MEMBER`` somewhere in the application's source (found with
``ast``, outside ``hotline/wording/``): a key left behind by a code change is reported unused.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import replace
from importlib import resources
from pathlib import Path

from hotline.wording.areas import AREAS, LANGUAGES, areas_in
from hotline.wording.catalogue import LanguageReport, check_language, read_source
from hotline.wording.keys import WordingKey

#: The packages whose source may use keys (pyproject.toml's packages).
APPLICATION_PACKAGES = ("hotline", "ivr_flows", "sms", "dispatcher")


def package_sources(packages: Iterable[str] = APPLICATION_PACKAGES) -> list[Path]:
    """Every ``.py`` file of ``packages``, but those of the wording package itself (defining
    or loading a key is not using it)."""
    own = Path(__file__).resolve().parent
    files: list[Path] = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            files += [
                p for p in sorted(Path(location).rglob("*.py")) if own not in p.resolve().parents
            ]
    return files


def key_references(sources: Iterable[Path]) -> set[tuple[str, str]]:
    """``(class name, member)`` for every ``Name.MEMBER`` or ``module.Name.MEMBER`` in the
    sources."""
    found: set[tuple[str, str]] = set()
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            if isinstance(owner, ast.Name):
                found.add((owner.id, node.attr))
            elif isinstance(owner, ast.Attribute):
                found.add((owner.attr, node.attr))
    return found


def unused_members(references: set[tuple[str, str]]) -> list[WordingKey]:
    """The key enum members no reference names."""
    return [
        key
        for area in AREAS
        for key in area.keys
        if (area.keys.__name__, key.name) not in references
    ]


def check_all(
    sources: Iterable[Path] | None = None, languages: Iterable[str] = LANGUAGES
) -> list[LanguageReport]:
    """One report per language: its file's problems plus the keys of its areas no code uses."""
    unused = unused_members(key_references(package_sources() if sources is None else sources))
    reports = []
    for code in languages:
        report, _ = check_language(code, read_source(code))
        tables = {area.keys: area.table for area in areas_in(code)}
        never_used = tuple(
            f"[{tables[type(key)]}] {key.value} ({type(key).__name__}.{key.name}: no code uses it)"
            for key in unused
            if type(key) in tables
        )
        reports.append(replace(report, unused=(*report.unused, *never_used)))
    return reports


def stray_files() -> list[str]:
    """Wording files of languages no area is declared for (a language half added)."""
    here = resources.files(__package__)
    return sorted(
        entry.name
        for entry in here.iterdir()
        if entry.name.endswith(".toml") and entry.name.removesuffix(".toml") not in LANGUAGES
    )


def main() -> int:
    """Print the check; exit status 1 when anything is wrong."""
    failed = False
    for report in check_all():
        if report.problems:
            failed = True
            print(f"{report.code}.toml:")
            for problem in report.problems:
                print(f"  {problem}")
        else:
            print(f"{report.code}.toml: ok")
    for name in stray_files():
        failed = True
        print(f"{name}: no language {name.removesuffix('.toml')!r} in hotline/wording/areas.py")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
