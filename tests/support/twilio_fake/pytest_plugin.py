"""Fixtures for the Twilio fake (a pytest plugin, registered in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .contract import Contract, contract_or_skip
from .server import TwilioFake


@pytest.fixture(scope="session")
def twilio_contract() -> Contract:
    """Twilio's OpenAPI document, parsed and indexed once per session (skip if absent; fail on
    CI)."""
    return contract_or_skip()


@pytest.fixture
def twilio_fake(twilio_contract: Contract) -> Iterator[TwilioFake]:
    """A running fake; the test fails if the fake saw a contract violation or served badly.

    A test that provokes problems on purpose takes them with ``fake.take_problems()``.
    """
    with TwilioFake(contract=twilio_contract) as fake:
        yield fake
    if fake.problems:
        pytest.fail(
            "the Twilio fake reported problems:\n  " + "\n  ".join(fake.problems), pytrace=False
        )
