"""Everything that arrives from the phone network comes through :func:`twilio_webhook`.

It checks ``X-Twilio-Signature`` against the URL Twilio used (rebuilt from PUBLIC_BASE_URL, since
behind a TLS proxy the app sees another scheme and host), drops caller-location fields, and makes
Twilio's retries harmless: the first delivery's response is stored with the work it did, in one
transaction, and a retry gets the stored response and changes nothing.

When the database itself fails (restarting, unreachable, a lock or statement timeout), nothing of
the delivery is stored and the route answers with its blueprint's fallback instead of a 500, so a
caller never hears Twilio's "application error": the voice menu the apology with a chance to
record (the recording stays at the provider), texts the 911/988 answer. What the provider keeps
is brought in later by :mod:`hotline.background.reconcile`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Response, request
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from hotline.core.redaction import drop_caller_location
from hotline.models import InboundMessageSid, WebhookReceipt
from hotline.services import Hotline, hotline

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'

#: How long a delivery's receipt is kept. Twilio retries within seconds to minutes; a week
#: covers any replay worth recognising and keeps the table small.
RECEIPT_RETENTION = timedelta(days=7)

#: Webhook parameters can be large (a long SMS body is 1600 characters); anything beyond this is
#: not something Twilio sends.
MAX_WEBHOOK_BYTES = 64 * 1024


@dataclass(frozen=True)
class TwilioRequest:
    """A verified webhook: its parameters (caller location removed) and where it came in."""

    endpoint: str
    url: str
    params: dict[str, str]
    idempotency_token: str | None

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)


WebhookView = Callable[[TwilioRequest, Session], Response]
#: What a route answers when the database failed: built from the request alone.
DatabaseFallback = Callable[[TwilioRequest], Response]

#: Twilio gives up on a webhook after about 15 s. A web request's transaction on PostgreSQL waits
#: at most this long for a lock, and a statement runs at most this long, so a stuck database
#: still leaves time to answer with the fallback.
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "10s"


def unavailable(_req: TwilioRequest) -> Response:
    """The fallback of routes that declare none: a 503, with nothing stored.

    Right for status callbacks: Twilio does not retry them whatever the answer, so a 200 would
    only hide the loss; a 5xx shows up in Twilio's debugger (error 11200) and in the logs, and the
    periodic checks recover what the callback said (:mod:`hotline.background.reconcile`)."""
    return Response("database unavailable", status=503, content_type="text/plain")


def is_database_failure(exc: BaseException) -> bool:
    """The database (not the request) failed: unreachable, restarting, a timeout, a dropped
    connection. Constraint violations are the guard's own business (retried)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _limit_waiting(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "SELECT set_config('lock_timeout', :lock, true), "
                "set_config('statement_timeout', :statement, true)"
            ),
            {"lock": LOCK_TIMEOUT, "statement": STATEMENT_TIMEOUT},
        )


def public_url_of_request(base_url: str) -> str:
    """The URL as Twilio requested it: PUBLIC_BASE_URL + path + query string, byte for byte."""
    query = request.query_string.decode("latin-1")
    return f"{base_url}{request.path}" + (f"?{query}" if query else "")


def signature_is_valid(services: Hotline, url: str) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not services.webhook_auth_token:
        return False
    validator = RequestValidator(services.webhook_auth_token)
    # request.form itself, not to_dict(): repeated keys must all be signed.
    return bool(validator.validate(url, request.form, signature))


def receipt_key(endpoint: str, url: str, params: dict[str, str], token: str | None) -> str:
    if token:
        material = f"token\n{endpoint}\n{token}"
    else:
        # Without a token a retry is recognised by identical content. Flows put a step counter in
        # their action URLs, so two genuine, identical keypresses at different steps differ.
        material = f"content\n{endpoint}\n{url}\n" + "\n".join(
            f"{k}={v}" for k, v in sorted(params.items())
        )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _stored_response(services: Hotline, receipt: WebhookReceipt) -> Response:
    try:
        body = services.keyring.open_receipt(receipt.body)
    except ValueError:
        # Sealed under a key this install no longer has: answer with nothing rather than do
        # the work a second time.
        log.warning("receipt of a repeated delivery on %s could not be opened", receipt.endpoint)
        body = EMPTY_TWIML
    return Response(body, status=receipt.status_code, content_type=receipt.content_type)


def twilio_webhook(
    endpoint: str, *, on_database_error: DatabaseFallback = unavailable
) -> Callable[[WebhookView], Callable[[], Response]]:
    """Turn ``view(twilio_request, session) -> Response`` into a verified, idempotent route.

    The view does its database work in the session it is given; it is committed together with
    the receipt of this delivery, so a crash between "did the work" and "noted the delivery"
    cannot happen. When the database fails (:func:`is_database_failure`), in the view or at the
    commit, nothing is stored and ``on_database_error(twilio_request)`` answers instead.
    """

    def decorate(view: WebhookView) -> Callable[[], Response]:
        @functools.wraps(view)
        def handle() -> Response:
            services = hotline()
            if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
                return Response("request too large", status=413, content_type="text/plain")
            url = public_url_of_request(services.settings.public_base_url)
            if not signature_is_valid(services, url):
                # Nothing of the body is logged: it may hold a reporter's number and words.
                log.warning(
                    "rejected webhook with a missing or invalid signature on %s", request.path
                )
                return Response("invalid signature", status=403, content_type="text/plain")

            params = drop_caller_location(request.form.to_dict(flat=True))
            token = request.headers.get("I-Twilio-Idempotency-Token") or None
            twilio_request = TwilioRequest(endpoint, url, params, token)
            key = receipt_key(endpoint, url, params, token)
            try:
                return _apply_once(services, view, twilio_request, key)
            except Exception as exc:
                if not is_database_failure(exc):
                    raise
                # Only the class: the text of a database error can quote the statement's values.
                log.error(
                    "database unavailable on %s (%s); answered with the fallback, nothing stored",
                    endpoint,
                    type(getattr(exc, "orig", None) or exc).__name__,
                )
                return on_database_error(twilio_request)

        return handle

    return decorate


def _apply_once(
    services: Hotline, view: WebhookView, twilio_request: TwilioRequest, key: str
) -> Response:
    """Answer a repeated delivery from its receipt, or run the view and store its receipt."""
    endpoint = twilio_request.endpoint
    for attempt in (1, 2):
        with services.db.sessionmaker() as session:
            _limit_waiting(session)
            earlier = session.scalar(select(WebhookReceipt).where(WebhookReceipt.key == key))
            if earlier is not None:
                log.info("repeated delivery on %s answered from its receipt", endpoint)
                return _stored_response(services, earlier)
            try:
                response = view(twilio_request, session)
                session.add(
                    WebhookReceipt(
                        key=key,
                        endpoint=endpoint,
                        status_code=response.status_code,
                        content_type=response.content_type or "text/plain",
                        # Sealed: an answer may read out a reporter's PIN.
                        body=services.keyring.seal_receipt(response.get_data(as_text=True)),
                        received_at=services.clock.now(),
                    )
                )
                session.commit()
                return response
            except IntegrityError:
                session.rollback()
                # Either this same delivery raced us and committed first (the next round
                # answers from its receipt), or a concurrent webhook created the same row
                # (two first callbacks of one call): do the work once more on top of what the
                # other committed. Status callbacks are not retried by Twilio, so giving up
                # here would lose them.
                if attempt == 2:
                    raise
                log.info("conflict on %s; applying the delivery again", endpoint)
    raise AssertionError("unreachable")


def purge_receipts(session: Session, now: datetime) -> int:
    """Forget receipts older than RECEIPT_RETENTION. Returns how many were removed."""
    result = session.execute(
        delete(WebhookReceipt).where(WebhookReceipt.received_at < now - RECEIPT_RETENTION)
    )
    # The sids of texts handled are needed only as far back as the reconciliation looks.
    session.execute(
        delete(InboundMessageSid).where(InboundMessageSid.created_at < now - RECEIPT_RETENTION)
    )
    return int(getattr(result, "rowcount", 0) or 0)
