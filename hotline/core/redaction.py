"""Keeping phone numbers and caller location out of logs.

A reporter's number must never be written anywhere in clear, and logs are the place it leaks
first (a stray ``log.info("from %s", request.form)``). The filter rewrites every record before any
handler formats it; ``install`` also hooks the record factory so loggers created later by
gunicorn, Celery or a library are covered without anyone remembering to add a filter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: Caller-location and caller-name fields Twilio adds to webhooks. They are dropped on arrival:
#: a reporter's city and ZIP code can identify them as surely as their number, and the signed
#: STIR/SHAKEN token carries the number itself. ``StirVerstat`` (how well the caller ID was
#: verified) is kept: it says nothing of the caller, and agents judge callers by it.
CALLER_LOCATION_FIELDS: frozenset[str] = frozenset(
    f"{who}{what}"
    for who in ("From", "To", "Caller", "Called")
    for what in ("City", "State", "Zip", "Country")
) | frozenset({"CallerName", "FromName", "StirPassportToken"})

MASK = "[phone]"

# Phone numbers as they show up in text: E.164 (+14158675309, also URL-encoded %2B1415...),
# national formats with separators ((415) 867-5309, 415.867.5309) and bare 10-15 digit runs.
# Report numbers (6-8 digits) and PINs (4-6) are short enough to stay readable.
_PHONE_RE = re.compile(
    r"""
    (?<![\w])                                  # not inside a word or id (CA1234...)
    (?:\+|%2[bB])?                             # E.164 plus, raw or URL-encoded
    (?:
        \d{10,15}                              # bare digits
      | \(?\d{3}\)?[\s.\-]{1,2}\d{3}[\s.\-]\d{4}          # North American with separators
      | \d{1,3}[\s.\-]\(?\d{2,4}\)?[\s.\-]\d{3,4}[\s.\-]\d{3,4}  # +1 415 867 5309 and similar
    )
    (?![\w]|\.\d)                              # nor a dotted id (a Message-ID's 1795244394.12739)
    """,
    re.VERBOSE,
)


def redact_text(text: str) -> str:
    return _PHONE_RE.sub(MASK, text)


def drop_caller_location(params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in CALLER_LOCATION_FIELDS}


class PhoneNumberRedactingFilter(logging.Filter):
    """Masks phone numbers in a record's message, arguments, traceback and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_hotline_redacted", False):
        return record
    try:
        message = record.getMessage()
    # An argument's __str__ may raise anything; the record must still be logged, masked.
    except Exception:  # noqa: BLE001 - a bad format must not hide the record, nor leak its args
        message = f"{record.msg!s} (unformattable arguments dropped)"
    record.msg = redact_text(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    record._hotline_redacted = True
    return record


_installed = False


def install(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Redact every record created from now on, and add the filter to the given handlers."""
    global _installed
    for handler in handlers or logging.getLogger().handlers:
        if not any(isinstance(f, PhoneNumberRedactingFilter) for f in handler.filters):
            handler.addFilter(PhoneNumberRedactingFilter())
    if _installed:
        return
    base_factory: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        # exc_info and stack_info are already on the record when it is made, so the
        # traceback is formatted and masked here, before any handler sees it.
        return redact_record(base_factory(*args, **kwargs))

    logging.setLogRecordFactory(redacting_factory)
    _installed = True
