"""The simulated phone network: the embedded default's stand-in for Twilio and the phones.

It runs the hotline's TwiML, signs its webhooks like Twilio, and lets a browser tab (the dev
phone) or a test be the handset. Never used in production (the configuration refuses it there).
Other code imports from here.
"""

from hotline.telephony.simulated.network import (
    APPLICATION_ERROR_TEXT,
    DEFAULT_ACCOUNT_SID,
    HandsetError,
    SimCallInfo,
    SimEvent,
    SimMedia,
    SimMessage,
    SimRecording,
    SimulatedPhoneNetwork,
    WebhookDelivery,
)
from hotline.telephony.simulated.transport import (
    HttpWebhookTransport,
    WebhookDeliveryError,
    WebhookReply,
    WebhookTransport,
    twilio_signature,
)

__all__ = [
    "APPLICATION_ERROR_TEXT",
    "DEFAULT_ACCOUNT_SID",
    "HandsetError",
    "HttpWebhookTransport",
    "SimCallInfo",
    "SimEvent",
    "SimMedia",
    "SimMessage",
    "SimRecording",
    "SimulatedPhoneNetwork",
    "WebhookDelivery",
    "WebhookDeliveryError",
    "WebhookReply",
    "WebhookTransport",
    "twilio_signature",
]
