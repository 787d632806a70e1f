"""Creating tips: a public report number and a PIN the reporter uses to follow up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import timeline
from hotline.identity import IdentityKeyring
from hotline.models import ActorType, Channel, Reporter, School, Tip, TipLevel, TipStatus


def random_digits(min_len: int, max_len: int) -> str:
    """Random digits, ``min_len`` to ``max_len`` long, never starting with 0 (read aloud, a
    leading "zero" is the digit callers most often drop)."""
    length = min_len + secrets.randbelow(max_len - min_len + 1)
    return str(1 + secrets.randbelow(9)) + "".join(
        str(secrets.randbelow(10)) for _ in range(length - 1)
    )


def new_report_number(session: Session) -> str:
    while True:
        candidate = random_digits(6, 8)
        if session.scalar(select(Tip.id).where(Tip.report_number == candidate)) is None:
            return candidate


def new_pin() -> str:
    return random_digits(4, 6)


@dataclass(frozen=True)
class NewTip:
    tip: Tip
    #: Said to the reporter once and never stored in clear.
    pin: str


def create_tip(
    session: Session,
    keyring: IdentityKeyring,
    *,
    channel: Channel,
    level: TipLevel,
    received_at: datetime,
    language: str = "en",
    category: str | None = None,
    tip_type: str | None = None,
    school: School | None = None,
    reporter: Reporter | None = None,
    status: TipStatus = TipStatus.INTAKE,
) -> NewTip:
    report_number = new_report_number(session)
    pin = new_pin()
    pin_hash, pin_key_id = keyring.hash_pin(report_number, pin)
    tip = Tip(
        report_number=report_number,
        pin_hash=pin_hash,
        pin_key_id=pin_key_id,
        channel=channel,
        language=language,
        category=category,
        level=level,
        type=tip_type,
        school=school,
        reporter=reporter,
        status=status,
        received_at=received_at,
        updated_at=received_at,
    )
    session.add(tip)
    session.flush()
    timeline.record(
        session,
        tip,
        "tip.received",
        at=received_at,
        actor_type=ActorType.REPORTER,
        channel=channel.value,
        level=level.value,
        category=category,
        school_id=None if school is None else school.id,
    )
    return NewTip(tip=tip, pin=pin)
