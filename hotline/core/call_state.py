"""What a call's row keeps between its webhooks (``Call.flow_state``), stamped with whose it is:
a caller's place in the voice menu or an alert call's progress, so neither is read as the other.

Pure (no database, no Flask): the voice menu's own state type imports it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class CallStateKind(enum.StrEnum):
    #: A caller in the voice menu (``ivr_flows.flow.VoiceState``).
    VOICE_MENU = "voice_menu"
    #: A call the dispatcher placed to a contact (``dispatcher.alert_call_state.AlertCallState``).
    ALERT_CALL = "alert_call"


#: The key of the stored JSON that names its kind.
KIND_KEY = "call_state"


class CallStateMismatch(ValueError):
    """A call's stored state is not of the kind its reader expects (an alert call's state read
    by the voice menu, or a caller's read by the alert call)."""


def stamped(kind: CallStateKind, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` as stored: with ``kind`` under :data:`KIND_KEY`."""
    if KIND_KEY in fields:
        raise ValueError(f"{KIND_KEY!r} is the stamp's key, not a field")
    return {KIND_KEY: kind.value, **fields}


def fields_of(
    kind: CallStateKind, stored: Mapping[str, Any], *, unstamped_marker: str
) -> dict[str, Any]:
    """The fields of a state of ``kind`` as stored, without the stamp; ``{}`` for an empty one
    (a row made before any state was kept: the first status callback of a call).

    A state written before states were stamped (a call under way across the upgrade) is
    recognised by ``unstamped_marker``, a key only that kind ever had. Any other state raises
    :class:`CallStateMismatch`, naming what was found."""
    if not stored:
        return {}
    found = stored.get(KIND_KEY)
    if found is None:
        if unstamped_marker in stored:
            return dict(stored)
        raise CallStateMismatch(
            f"a call's state without a stamp and without {unstamped_marker!r} read as "
            f"{kind.value} (keys: {sorted(stored)})"
        )
    if found != kind.value:
        raise CallStateMismatch(f"a {found} call's state read as {kind.value}")
    return {key: value for key, value in stored.items() if key != KIND_KEY}
