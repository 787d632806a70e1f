"""What an alert call keeps between its webhooks: the outbox rows it was placed for and whether
the callee pressed 1. Stored on the call's row, stamped as an alert call's (never a caller's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hotline.core.call_state import CallStateKind, CallStateMismatch, fields_of, stamped


@dataclass(frozen=True)
class AlertCallState:
    #: The outbox rows the call was placed for (one per tip when the call bundles several);
    #: empty until the call's first webhook that names them.
    notification_ids: tuple[int, ...] = ()
    #: The callee pressed 1: a machine verdict or a final status that comes after it changes
    #: nothing (no voicemail, no retry).
    confirmed: bool = False

    def to_json(self) -> dict[str, Any]:
        return stamped(
            CallStateKind.ALERT_CALL,
            {"notifications": list(self.notification_ids), "confirmed": self.confirmed},
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertCallState:
        """Read an alert call's stored state; a caller's state raises
        :class:`~hotline.core.call_state.CallStateMismatch`."""
        fields = fields_of(CallStateKind.ALERT_CALL, data, unstamped_marker="notifications")
        ids = fields.get("notifications", [])
        confirmed = fields.get("confirmed", False)
        if (
            not isinstance(ids, list)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
            or not isinstance(confirmed, bool)
        ):
            raise CallStateMismatch(f"not an alert call's state: {sorted(fields)}")
        return cls(notification_ids=tuple(ids), confirmed=confirmed)
