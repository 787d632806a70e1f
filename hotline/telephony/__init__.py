"""The phone network behind a small port: Twilio in production, a simulated network otherwise."""

from hotline.telephony.ports import (
    CallRequest,
    CallUpdate,
    FetchedMedia,
    PlacedCall,
    SentMessage,
    SmsRequest,
    Telephony,
    TelephonyError,
    TelephonyErrorKind,
)

__all__ = [
    "CallRequest",
    "CallUpdate",
    "FetchedMedia",
    "PlacedCall",
    "SentMessage",
    "SmsRequest",
    "Telephony",
    "TelephonyError",
    "TelephonyErrorKind",
]
