"""Posting one webhook to the app as Twilio does (signed, with an idempotency token), and the log
of every delivery that trainers and tests read and can post again.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlencode

from hotline.core.redaction import redact_text
from hotline.telephony.simulated.records import WebhookDelivery
from hotline.telephony.simulated.state import SimState
from hotline.telephony.simulated.transport import (
    HTTP_RETRIEVAL_FAILURE,
    GetCapableTransport,
    WebhookDeliveryError,
    WebhookReply,
    WebhookTransport,
    twilio_signature,
)
from hotline.telephony.simulated.wire import url_path

log = logging.getLogger(__name__)

#: Deliveries kept for :meth:`WebhookPoster.deliveries` (the most recent ones).
MAX_DELIVERIES_KEPT = 5_000


@dataclass
class Outcome:
    """What came of one webhook: the app's answer, or the Twilio error code and why."""

    reply: WebhookReply | None
    error_code: int | None
    error: str | None
    delivery: WebhookDelivery


class WebhookPoster:
    """Signs and posts webhooks through the transport. The log is guarded by the shared lock."""

    def __init__(self, state: SimState, transport: WebhookTransport) -> None:
        self._state = state
        self._transport = transport
        self._deliveries: deque[WebhookDelivery] = deque(maxlen=MAX_DELIVERIES_KEPT)
        self._delivery_seq = itertools.count(1)

    def send(
        self,
        method: str,
        url: str,
        params: list[tuple[str, str]],
        *,
        token: str | None = None,
        purpose: str,
        call_sid: str | None = None,
        message_sid: str | None = None,
    ) -> Outcome:
        """Post (or GET) one signed webhook. Never called with the lock held."""
        state = self._state
        if method == "GET":
            # Twilio puts the parameters in the query string and signs the whole URL.
            target = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
            signed: list[tuple[str, str]] = []
        else:
            target, signed = url, params
        token = token or str(uuid.uuid4())
        headers = {
            "X-Twilio-Signature": twilio_signature(state.auth_token, target, signed),
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": "TwilioProxy/1.1",
        }
        reply: WebhookReply | None = None
        code: int | None = None
        reason: str | None = None
        try:
            if method == "GET":
                if isinstance(self._transport, GetCapableTransport):
                    reply = self._transport.get(target, headers)
                else:
                    code, reason = HTTP_RETRIEVAL_FAILURE, "this transport cannot send GET"
            else:
                reply = self._transport.post(target, list(signed), headers)
        except WebhookDeliveryError as exc:
            code, reason = exc.code, exc.reason
        # Like Twilio, the simulator turns any failure of the hotline's webhook into error 11200
        # and goes on; the hotline's own bug must not take the phone network down with it.
        except Exception as exc:  # noqa: BLE001 - the network's boundary with the hotline
            code, reason = HTTP_RETRIEVAL_FAILURE, f"webhook failed: {type(exc).__name__}"
        if reply is not None and not 200 <= reply.status < 300:
            code, reason = HTTP_RETRIEVAL_FAILURE, f"HTTP {reply.status} from {url_path(url)}"
        with state.lock:
            at = state.clock.now()
            delivery = WebhookDelivery(
                id=next(self._delivery_seq),
                at=at,
                purpose=purpose,
                method=method,
                url=url,
                params=tuple(params),
                idempotency_token=token,
                status=reply.status if reply is not None else None,
                error_code=code,
                error=reason,
                call_sid=call_sid,
                message_sid=message_sid,
            )
            self._deliveries.append(delivery)
            call = state.calls.get(call_sid) if call_sid else None
            state.event_locked(
                "webhook",
                at,
                f"{method} {url_path(url)} ({purpose}) -> "
                + (str(reply.status) if reply is not None else f"error {code}"),
                call=call,
                message_sid=message_sid,
                detail={"purpose": purpose, "url": url, "delivery": str(delivery.id)},
            )
        if code is not None:
            log.warning(
                "sim: %s webhook for %s failed: %s %s",
                purpose,
                call_sid or message_sid,
                code,
                redact_text(reason or ""),
            )
        return Outcome(reply, code, reason, delivery)

    def deliveries_locked(
        self, *, call_sid: str | None = None, message_sid: str | None = None
    ) -> list[WebhookDelivery]:
        return [
            d
            for d in self._deliveries
            if (call_sid is None or d.call_sid == call_sid)
            and (message_sid is None or d.message_sid == message_sid)
        ]

    def delivery_locked(self, delivery_id: int) -> WebhookDelivery | None:
        return next((d for d in self._deliveries if d.id == delivery_id), None)
