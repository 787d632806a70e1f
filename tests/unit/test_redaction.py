from __future__ import annotations

import logging

import pytest

from hotline.core import redaction
from hotline.core.redaction import PhoneNumberRedactingFilter, drop_caller_location, redact_text


@pytest.mark.parametrize(
    "text",
    [
        "from +14158675309 to",
        "From=%2B14158675309&To=%2B18005551212",
        "call (415) 867-5309 now",
        "call 415-867-5309 now",
        "call 415.867.5309 now",
        "+1 415 867 5309",
        "+44 20 7946 0958",
        "raw 4158675309",
    ],
)
def test_phone_numbers_are_masked(text: str) -> None:
    out = redact_text(text)
    assert "867" not in out
    assert "7946" not in out
    assert "[phone]" in out


@pytest.mark.parametrize(
    "text",
    ["report 1234567 pin 4321", "CallSid CA1234567890ABCDE1234567890abcde", "at 2026-11-21 06:10"],
)
def test_ids_report_numbers_and_dates_stay_readable(text: str) -> None:
    assert redact_text(text) == text


def _capture(logger: logging.Logger) -> list[str]:
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = ListHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(PhoneNumberRedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return lines


def test_filter_masks_arguments_and_tracebacks() -> None:
    logger = logging.getLogger("test.redaction.filter")
    lines = _capture(logger)
    logger.info("webhook %s", {"From": "+14158675309", "Body": "hi"})
    try:
        raise ValueError("bad number +14158675309")
    except ValueError:
        logger.exception("failed for %s", "+14158675309")
    text = "\n".join(lines)
    assert "8675309" not in text
    # message, argument, the raising source line and the exception text
    assert text.count("[phone]") == 4
    assert "ValueError" in text


def test_installed_factory_covers_loggers_without_the_filter() -> None:
    redaction.install()
    logger = logging.getLogger("test.redaction.unfiltered")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.propagate = False
    logger.warning("caller %s", "+14158675309")
    assert records[0].getMessage() == "caller [phone]"


def test_caller_location_is_dropped() -> None:
    params = {
        "CallSid": "CA1",
        "From": "+14158675309",
        "FromCity": "OAKLAND",
        "FromZip": "94607",
        "CallerName": "JANE DOE",
        "ToState": "CA",
        "Digits": "1",
        "StirPassportToken": "eyJhbGciOiJFUzI1NiJ9.orig-tn-inside",
        "StirVerstat": "TN-Validation-Passed-A",
    }
    # StirVerstat is kept: agents judge a caller ID by it, and it says nothing of the caller.
    assert drop_caller_location(params) == {
        "CallSid": "CA1",
        "From": "+14158675309",
        "Digits": "1",
        "StirVerstat": "TN-Validation-Passed-A",
    }


def test_dotted_ids_are_not_phone_numbers() -> None:
    message_id = "<179524439465.12739.14226290395968238341@hotline.example.org>"
    assert redact_text(f"e-mail {message_id} accepted") == f"e-mail {message_id} accepted"
    assert redact_text("call 4155550123.") == "call [phone]."
