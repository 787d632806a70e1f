"""Tip types and the level each one carries."""

from __future__ import annotations

from hotline.models import TipLevel
from hotline.wording import TipTypeKey, staff_text

#: type → (level, what people read: its text in the wording's ``[tip_type]``). The level is
#: provisional from the channel's category and an agent can change both; the deadline follows
#: the level.
TIP_TYPES: dict[str, tuple[TipLevel, TipTypeKey]] = {
    # Critical: 20 minutes, at any hour.
    "self_harm": (TipLevel.CRITICAL, TipTypeKey.SELF_HARM),
    "planned_attack": (TipLevel.CRITICAL, TipTypeKey.PLANNED_ATTACK),
    "weapon": (TipLevel.CRITICAL, TipTypeKey.WEAPON),
    "bomb_threat": (TipLevel.CRITICAL, TipTypeKey.BOMB_THREAT),
    "threat_of_violence": (TipLevel.CRITICAL, TipTypeKey.THREAT_OF_VIOLENCE),
    "crime_against_person": (TipLevel.CRITICAL, TipTypeKey.CRIME_AGAINST_PERSON),
    "in_progress": (TipLevel.CRITICAL, TipTypeKey.IN_PROGRESS),
    # Standard: 1 hour of business time.
    "bullying": (TipLevel.STANDARD, TipTypeKey.BULLYING),
    "cyberbullying": (TipLevel.STANDARD, TipTypeKey.CYBERBULLYING),
    "discrimination": (TipLevel.STANDARD, TipTypeKey.DISCRIMINATION),
    "harassment": (TipLevel.STANDARD, TipTypeKey.HARASSMENT),
    "hazing": (TipLevel.STANDARD, TipTypeKey.HAZING),
    "runaway": (TipLevel.STANDARD, TipTypeKey.RUNAWAY),
    "smoking": (TipLevel.STANDARD, TipTypeKey.SMOKING),
    "vaping": (TipLevel.STANDARD, TipTypeKey.VAPING),
    "drugs": (TipLevel.STANDARD, TipTypeKey.DRUGS),
    "drug_possession": (TipLevel.STANDARD, TipTypeKey.DRUG_POSSESSION),
    "drug_use": (TipLevel.STANDARD, TipTypeKey.DRUG_USE),
    "drug_distribution": (TipLevel.STANDARD, TipTypeKey.DRUG_DISTRIBUTION),
    "staff_misconduct": (TipLevel.STANDARD, TipTypeKey.STAFF_MISCONDUCT),
    # Other: 4 hours of business time.
    "complaint": (TipLevel.OTHER, TipTypeKey.COMPLAINT),
    "information_request": (TipLevel.OTHER, TipTypeKey.INFORMATION_REQUEST),
    "incomplete_information": (TipLevel.OTHER, TipTypeKey.INCOMPLETE_INFORMATION),
    "false_report": (TipLevel.OTHER, TipTypeKey.FALSE_REPORT),
    "misuse": (TipLevel.OTHER, TipTypeKey.MISUSE),
}


def level_of_type(tip_type: str) -> TipLevel:
    try:
        return TIP_TYPES[tip_type][0]
    except KeyError:
        raise ValueError(f"unknown tip type {tip_type!r}") from None


def describe_type(tip_type: str | None) -> str | None:
    if tip_type is None:
        return None
    entry = TIP_TYPES.get(tip_type)
    return staff_text(entry[1]) if entry else tip_type.replace("_", " ")
