"""The tip's timeline: every action on a tip, who did it and when, appended and never changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hotline.models import ActorType, Tip, TipEvent, TipEventKind


def record(
    session: Session,
    tip: Tip,
    kind: TipEventKind,
    *,
    at: datetime,
    actor_type: ActorType = ActorType.SYSTEM,
    actor_id: str | int | None = None,
    **data: Any,
) -> TipEvent:
    event = TipEvent(
        tip=tip,
        kind=kind,
        at=at,
        actor_type=actor_type,
        actor_id=None if actor_id is None else str(actor_id),
        data=data,
    )
    session.add(event)
    return event
