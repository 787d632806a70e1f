"""A local fake of Twilio's REST API, checked against Twilio's OpenAPI document.

Use the fixtures of :mod:`tests.support.twilio_fake.pytest_plugin` (``twilio_contract``,
``twilio_fake``) or, elsewhere, ``with TwilioFake(contract=contract_or_skip()) as fake:``.
"""

from __future__ import annotations

from .contract import SPEC_PATH, Contract, ContractUnavailable, contract_or_skip, load_contract
from .server import (
    DEFAULT_NUMBER_ERRORS,
    PATIENT_READ_TIMEOUT,
    WAV_BYTES,
    Fault,
    RecordedRequest,
    TwilioFake,
    new_sid,
)

__all__ = [
    "DEFAULT_NUMBER_ERRORS",
    "PATIENT_READ_TIMEOUT",
    "SPEC_PATH",
    "WAV_BYTES",
    "Contract",
    "ContractUnavailable",
    "Fault",
    "RecordedRequest",
    "TwilioFake",
    "contract_or_skip",
    "load_contract",
    "new_sid",
]
