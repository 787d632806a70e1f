"""Waiting on a condition, for tests that run real threads or processes: poll until it holds,
fail with what was awaited; never a fixed sleep that is too short on a loaded machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T | None], *, limit: float = 30.0) -> T:
    """Return ``probe()``'s first truthy value; fail the test after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out ({limit:.0f} s) waiting for {what}", pytrace=False)
        time.sleep(0.02)
