"""The simulated phone network: the embedded default's stand-in for Twilio and the phones.

It runs the hotline's TwiML, signs its webhooks like Twilio, and lets a browser tab (the dev
phone) or a test be the handset. Never used in production (the configuration refuses it there).

Other code imports from here. The modules, each with one job:

* ``network``: the facade, :class:`SimulatedPhoneNetwork` (the Telephony port, the handset
  actions, ``tick()``, what the dev phone and tests observe);
* ``state``: the state every part shares and the one lock (who holds it when);
* ``handset``: what a person at a handset does (dial, press keys, speak, record, answer, hang up,
  text);
* ``voice``: the voice engine (fetching and running TwiML, pauses, <Dial>, machine detection);
  ``listening``: <Gather> and <Record>; ``lifecycle``: call statuses, callbacks, the end of a call;
* ``messaging``: texts both ways, Twilio's opt-out words, media, each handset's conversation;
* ``timers``: the timer queue and moving time on; ``lanes``: the job queue run outside the lock;
* ``delivery``: posting one signed webhook and the log of deliveries; ``transport``: how webhooks
  reach the app (HTTP, or a test's transport); ``twiml``: TwiML parsed and checked like Twilio;
  ``wire``: Twilio's sids, API version and caller-location fields;
* ``records``: the public record types and :class:`HandsetError`.
"""

from hotline.telephony.simulated.lifecycle import APPLICATION_ERROR_TEXT
from hotline.telephony.simulated.network import DEFAULT_ACCOUNT_SID, SimulatedPhoneNetwork
from hotline.telephony.simulated.records import (
    HandsetError,
    SimCallInfo,
    SimConversation,
    SimEvent,
    SimMedia,
    SimMessage,
    SimRecording,
    SimText,
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
    "SimConversation",
    "SimEvent",
    "SimMedia",
    "SimMessage",
    "SimRecording",
    "SimText",
    "SimulatedPhoneNetwork",
    "WebhookDelivery",
    "WebhookDeliveryError",
    "WebhookReply",
    "WebhookTransport",
    "twilio_signature",
]
