"""How the simulated phone network reaches the app: signed, form-encoded webhooks.

Twilio signs every webhook with the account's auth token; the app verifies the signature with
``twilio.request_validator.RequestValidator``. The simulator signs the same way so the app's
verification runs unchanged in development and training (and a wrong token fails there too).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import requests

#: Twilio gives up on a webhook after about 15 seconds; the caller then hears an application error.
TWILIO_WEBHOOK_TIMEOUT_SECONDS = 15.0

#: Twilio error codes the simulator reports, as Twilio's debugger would.
HTTP_RETRIEVAL_FAILURE = 11200
HTTP_CONNECTION_FAILURE = 11205


@dataclass(frozen=True)
class WebhookReply:
    status: int
    content_type: str
    body: str


class WebhookDeliveryError(Exception):
    """The webhook got no HTTP answer at all (connection refused, timeout, bad host)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WebhookTransport(Protocol):
    """Posts one webhook and returns the app's answer; raises WebhookDeliveryError when there is
    no answer. ``params`` is a list so repeated names survive, as in a real form post."""

    def post(
        self, url: str, params: list[tuple[str, str]], headers: dict[str, str]
    ) -> WebhookReply: ...


@runtime_checkable
class GetCapableTransport(Protocol):
    """A transport that can also fetch TwiML with GET (``method="GET"`` on an action or a
    redirect). Twilio then puts the parameters in the query string and signs the full URL."""

    def get(self, url: str, headers: dict[str, str]) -> WebhookReply: ...


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature`` exactly as ``RequestValidator.compute_signature`` computes it.

    The URL as posted, then every parameter name (sorted) followed by each of its distinct values
    (sorted), HMAC-SHA1 with the auth token, base64. The library de-duplicates names and values
    (``sorted(set(...))``), so the simulator does too: a signature it computes always validates.
    """
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    mac = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii").strip()


class HttpWebhookTransport:
    """Real HTTP, for the dev server: the app listens on PUBLIC_BASE_URL like it would for Twilio.

    The app's server must be threaded: the simulator may post to it while the same server is
    handling a browser request that drives the simulator.
    """

    def __init__(
        self,
        *,
        timeout: float = TWILIO_WEBHOOK_TIMEOUT_SECONDS,
        session: requests.Session | None = None,
    ) -> None:
        self._timeout = timeout
        self._shared_session = session
        # requests.Session is not documented as thread-safe: one per thread unless one is given.
        self._local = threading.local()

    def post(
        self, url: str, params: list[tuple[str, str]], headers: dict[str, str]
    ) -> WebhookReply:
        return self._send("POST", url, params, headers)

    def get(self, url: str, headers: dict[str, str]) -> WebhookReply:
        return self._send("GET", url, None, headers)

    def _session(self) -> requests.Session:
        if self._shared_session is not None:
            return self._shared_session
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _send(
        self,
        method: str,
        url: str,
        params: list[tuple[str, str]] | None,
        headers: dict[str, str],
    ) -> WebhookReply:
        try:
            # Redirects are not followed: the signature covers the URL that was asked for, and
            # a 3xx from the app is a misconfiguration worth seeing (Twilio reports 3xx loops).
            response = self._session().request(
                method,
                url,
                data=params,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise WebhookDeliveryError(
                HTTP_CONNECTION_FAILURE, f"timed out after {self._timeout:g} s"
            ) from exc
        except requests.RequestException as exc:
            raise WebhookDeliveryError(
                HTTP_CONNECTION_FAILURE, f"connection failure ({type(exc).__name__})"
            ) from exc
        return WebhookReply(
            status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            body=response.text,
        )
