"""Tip types and the level each one carries."""

from __future__ import annotations

from hotline.models import TipLevel

#: type → (level, what people read). The level is provisional from the channel's category and
#: an agent can change both; the deadline follows the level.
TIP_TYPES: dict[str, tuple[TipLevel, str]] = {
    # Critical: 20 minutes, at any hour.
    "self_harm": (TipLevel.CRITICAL, "threat of suicide or self-harm"),
    "planned_attack": (TipLevel.CRITICAL, "planned attack"),
    "weapon": (TipLevel.CRITICAL, "weapon"),
    "bomb_threat": (TipLevel.CRITICAL, "bomb or school threat"),
    "threat_of_violence": (TipLevel.CRITICAL, "threat of violence"),
    "crime_against_person": (TipLevel.CRITICAL, "crime against a person"),
    "in_progress": (TipLevel.CRITICAL, "something in progress or imminent"),
    # Standard: 1 hour of business time.
    "bullying": (TipLevel.STANDARD, "bullying"),
    "cyberbullying": (TipLevel.STANDARD, "cyberbullying"),
    "discrimination": (TipLevel.STANDARD, "discrimination"),
    "harassment": (TipLevel.STANDARD, "harassment"),
    "hazing": (TipLevel.STANDARD, "hazing"),
    "runaway": (TipLevel.STANDARD, "runaway"),
    "smoking": (TipLevel.STANDARD, "smoking"),
    "vaping": (TipLevel.STANDARD, "vaping"),
    "drugs": (TipLevel.STANDARD, "drugs, alcohol or vaping"),
    "drug_possession": (TipLevel.STANDARD, "drug possession"),
    "drug_use": (TipLevel.STANDARD, "drug use"),
    "drug_distribution": (TipLevel.STANDARD, "drug distribution"),
    "staff_misconduct": (TipLevel.STANDARD, "staff misconduct"),
    # Other: 4 hours of business time.
    "complaint": (TipLevel.OTHER, "general or school complaint"),
    "information_request": (TipLevel.OTHER, "request for information"),
    "incomplete_information": (TipLevel.OTHER, "incomplete information"),
    "false_report": (TipLevel.OTHER, "false or prank report"),
    "misuse": (TipLevel.OTHER, "misuse of the system"),
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
    return entry[1] if entry else tip_type.replace("_", " ")
