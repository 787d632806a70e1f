"""Finding a reporter again without ever storing their number in clear."""

from __future__ import annotations

from datetime import datetime

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core.identity import IdentityKeyring, SealedNumber
from hotline.models import ActorType, Reporter, Tip, TipEventKind


def normalize_reporter_number(raw: str) -> str | None:
    """E.164 for a number Twilio gave us, None for ``anonymous``, ``+266696687`` (Twilio's
    placeholder for withheld caller id) and anything that is not a phone number."""
    value = raw.strip()
    if not value or len(value) > 32:
        return None
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 in WITHHELD_PLACEHOLDERS:
        return None
    return e164


#: Values carriers and Twilio use when the caller withheld their number.
WITHHELD_PLACEHOLDERS = frozenset({"+266696687", "+86282452253", "+7378742833", "+2562533"})


def find_reporter(session: Session, keyring: IdentityKeyring, number: str) -> Reporter | None:
    hashes = keyring.number_hashes(number)
    rows = session.scalars(
        select(Reporter).where(Reporter.number_hash.in_(list(hashes.values())))
    ).all()
    for row in rows:
        if hashes.get(row.key_id) == row.number_hash:
            if row.key_id != keyring.current.key_id:
                _reseal(row, keyring, number)
            return row
    return None


def find_or_create_reporter(
    session: Session, keyring: IdentityKeyring, raw_number: str, now: datetime
) -> Reporter | None:
    """The reporter behind ``raw_number``; None when the number is withheld or unusable."""
    number = normalize_reporter_number(raw_number)
    if number is None:
        return None
    found = find_reporter(session, keyring, number)
    if found is not None:
        return found
    sealed = keyring.seal_number(number)
    reporter = Reporter(
        number_hash=sealed.number_hash,
        number_encrypted=sealed.number_encrypted,
        key_id=sealed.key_id,
        created_at=now,
    )
    session.add(reporter)
    session.flush()
    return reporter


def reporter_number(keyring: IdentityKeyring, reporter: Reporter) -> str:
    """The number in clear, for the code that texts the reporter back, and nothing else."""
    return keyring.open_number(
        SealedNumber(reporter.number_hash, reporter.number_encrypted, reporter.key_id)
    )


def _reseal(row: Reporter, keyring: IdentityKeyring, number: str) -> None:
    sealed = keyring.seal_number(number)
    row.number_hash = sealed.number_hash
    row.number_encrypted = sealed.number_encrypted
    row.key_id = sealed.key_id


def rotate_reporters(session: Session, keyring: IdentityKeyring, batch_size: int = 500) -> int:
    """Rewrite every reporter row under the current key. Returns how many were rewritten."""
    rewritten = 0
    while True:
        rows = session.scalars(
            select(Reporter)
            .where(Reporter.key_id != keyring.current.key_id)
            .order_by(Reporter.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return rewritten
        for row in rows:
            _reseal(row, keyring, reporter_number(keyring, row))
            rewritten += 1
        session.flush()


def reporter_opted_out(session: Session, tip: Tip, now: datetime) -> None:
    """The provider refused a text to the tip's reporter because they replied STOP (Twilio error
    21610): nothing more is sent to them, and the agents see why on the tip."""
    from hotline.core import timeline

    reporter = session.get(Reporter, tip.reporter_id) if tip.reporter_id else None
    if reporter is None or reporter.sms_opted_out:
        return
    reporter.sms_opted_out = True
    timeline.record(
        session,
        tip,
        TipEventKind.REPORTER_SMS_OPTED_OUT,
        at=now,
        actor_type=ActorType.SYSTEM,
        channel="sms",
        by="provider 21610",
    )
