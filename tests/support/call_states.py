"""A caller's and an alert call's stored state, for the call-state tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dispatcher.alert_call_state import AlertCallState
from hotline.models import Call
from hotline.services import hotline
from ivr_flows.flow import Category, SchoolRef, Step, VoiceState
from tests.support.dispatch_world import World

CALLER = VoiceState(
    step=Step.SCHOOL_CONFIRM,
    n=7,
    language="es",
    category=Category.THREAT,
    school_candidate=SchoolRef(3, "Lakeview High School"),
)


ALERT = AlertCallState(notification_ids=(12, 13), confirmed=True)


def stored_state(world: World, sid: str) -> dict[str, Any]:
    with hotline(world.app).db.sessionmaker() as s:
        return s.scalars(select(Call).where(Call.sid == sid)).one().flow_state
