"""Every data file inside the packages is declared as package data in pyproject.toml, so an
installed hotline (a wheel, not this checkout) still has its migrations, sample directory,
prompts and dev phone page: a file moved out of the patterns fails here, not once installed.
"""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hotline", "ivr_flows", "sms", "dispatcher")
#: What setuptools ships without being told: the code itself, and what Python leaves beside it.
NOT_DATA_SUFFIXES = frozenset({".py", ".pyc", ".pyo"})


def _package_data() -> dict[str, list[str]]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        config = tomllib.load(file)
    package_data: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    return package_data


def _data_files(package: str) -> set[str]:
    base = ROOT / package
    return {
        path.relative_to(base).as_posix()
        for path in base.rglob("*")
        if path.is_file()
        and path.suffix not in NOT_DATA_SUFFIXES
        and "__pycache__" not in path.parts
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_every_data_file_of_a_package_is_package_data(package: str) -> None:
    patterns = _package_data().get(package, [])
    # setuptools expands package-data patterns with glob, recursively, from the package's folder.
    declared = {
        match
        for pattern in patterns
        for match in glob.glob(pattern, root_dir=ROOT / package, recursive=True)
    }
    missing = sorted(_data_files(package) - declared)
    assert not missing, f"{package}: not in [tool.setuptools.package-data]: {missing}"
