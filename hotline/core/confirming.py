"""How a contact confirms an alert after it reached them, as every alert tells them.

Caller ID is not identity: calling or texting the hotline back confirms a report only when the
contact gives its report number (and it was sent to the number they use:
``dispatcher.confirm.confirmable_notifications``).
"""

from __future__ import annotations

#: The voice menu's option, after the language menu, for confirming an alert by report number.
VOICE_MENU_KEY = "3"
