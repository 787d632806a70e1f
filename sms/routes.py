"""The SMS webhook: verify (the decorator), parse, apply, answer TwiML. Nothing else.

- ``POST /twilio/sms``: a message comes in (the console's "A message comes in" URL).

Whatever fails inside, the words are not lost: the text is kept as a new tip by the simplest path
there is, and the sender still gets an answer with 911 and 988.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from hotline.background import reconcile
from hotline.services import hotline
from hotline.web.webhooks import TwilioRequest, twilio_webhook
from sms import commands, service
from sms.commands import InboundSms, KeywordCommand

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/twilio/sms")


def twiml(text: str | None) -> Response:
    """A ``MessagingResponse``: one ``<Message>`` with ``text``, or empty (send nothing)."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), content_type="text/xml; charset=utf-8")


def apology_for(message: InboundSms) -> service.Reply:
    """The answer when the text could not be kept: 911 and 988, in the text's language; nothing
    for a keyword (Twilio answers STOP and HELP itself)."""
    if isinstance(message.command, KeywordCommand):
        return service.Reply.nothing()
    return service.Reply(commands.apology_reply(commands.guess_language(message.body)))


def _apology_without_database(req: TwilioRequest) -> Response:
    """The database failed: nothing is stored; the text stays in the provider's message log and
    :mod:`hotline.background.reconcile` makes it a tip later."""
    return twiml(apology_for(commands.inbound_from_params(req.params)).text)


@bp.post("")
@twilio_webhook("sms.incoming", on_database_error=_apology_without_database)
def incoming(req: TwilioRequest, session: Session) -> Response:
    services = hotline()
    now = services.clock.now()
    message = commands.inbound_from_params(req.params)
    if reconcile.message_known(session, message.message_sid):
        # Brought in from the provider's log already (this delivery came very late).
        return twiml(None)
    try:
        reply = service.handle_text(session, services.keyring, message, now)
    except IntegrityError:
        raise  # a concurrent delivery created the same row: the decorator applies it again
    except Exception:
        # Logged without the sender's number or words (the redaction filter masks numbers too).
        log.exception("handling an incoming text failed; keeping it as a new tip")
        session.rollback()
        reply = _rescue(session, message)
    reconcile.note_message(session, message.message_sid, now, source="webhook")
    return twiml(reply.text)


def _rescue(session: Session, message: InboundSms) -> service.Reply:
    """The path of last resort: the words as a new tip, no commands, no conversation."""
    if isinstance(message.command, KeywordCommand):
        return apology_for(message)  # a keyword: nothing to keep, and maybe nothing to send
    services = hotline()
    try:
        sender = service.identify(session, message.sender)
        reply = service.keep_text(
            session, services.keyring, message, sender, services.clock.now(), join=False
        )
        session.flush()
        return reply
    except Exception:
        session.rollback()
        log.exception("could not keep an incoming text; it is in the provider's message log")
        return apology_for(message)
