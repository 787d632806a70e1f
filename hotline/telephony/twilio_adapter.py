"""Production adapter of the telephony port: Twilio's REST API through the official library.

Why the error handling looks the way it does: the dispatcher must never call a principal twice by
accident, and must never give up on a call that surely did not happen. So every failure is sorted
by what we know about the request's fate (see :class:`TelephonyErrorKind`):

* 429 / Twilio 20429, or a connection that was never established: nothing was done; RETRYABLE.
* a read timeout, a connection dropped after the request was sent, a 5xx: the call or message may
  exist at Twilio; UNKNOWN_OUTCOME, never re-sent blindly.
* a permanent number code (21211, 21214, 21217, 21610, 21612, 21614): PERMANENT_NUMBER.
* anything else (bad request, authentication): REJECTED, a bug or a misconfiguration.

Reads and deletes are idempotent: repeating them cannot ring anybody, so the outcomes that are
"unknown" for a create are RETRYABLE for them, and deleting something already gone is success.

Phone numbers never reach a log line or an exception message from here: Twilio's own error texts
quote the ``To`` number, so they are scrubbed before they are kept, and the library's exception is
not chained (its text would come back in any logged traceback).

``api_base_url`` points the whole adapter at another Twilio-compatible endpoint (a mock in tests, a
compatible provider): every ``https://*.twilio.com`` URL, including media URLs Twilio hands out, is
rewritten to it, so nothing is sent to twilio.com.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3.exceptions
from twilio.base.exceptions import TwilioException
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from hotline.core.redaction import redact_text
from hotline.telephony.ports import (
    MAX_LISTED,
    PERMANENT_NUMBER_CODES,
    RETRYABLE_CODES,
    CallRequest,
    CallUpdate,
    FetchedMedia,
    PlacedCall,
    ProviderCall,
    ProviderMessage,
    ProviderRecording,
    SentMessage,
    SmsRequest,
    TelephonyError,
    TelephonyErrorKind,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Redirects followed when downloading media (Twilio answers media GETs with a redirect to a
#: signed CDN URL); more than this is a loop.
MAX_MEDIA_REDIRECTS = 5

_SID_HEX = "[0-9a-fA-F]{32}"
#: A recording's media URL as Twilio hands it out (webhooks, ``media_url``): without extension,
#: ``.json`` (metadata) or an audio extension. A compatible provider may prefix the path.
_RECORDING_PATH_RE = re.compile(
    rf"/2010-04-01/Accounts/(?P<account>AC{_SID_HEX})/Recordings/(?P<sid>RE{_SID_HEX})"
    r"(?P<ext>\.(?:json|wav|mp3))?$"
)
#: An MMS picture: ``…/Messages/MM…/Media/ME…`` (GET without extension gives the bytes).
_MESSAGE_MEDIA_PATH_RE = re.compile(
    rf"/2010-04-01/Accounts/(?P<account>AC{_SID_HEX})/Messages/(?P<message>(?:SM|MM){_SID_HEX})"
    rf"/Media/(?P<sid>ME{_SID_HEX})(?:\.json)?$"
)


def is_twilio_host(host: str | None) -> bool:
    """``twilio.com`` and every subdomain (api., api.us1., media. …), nothing that merely ends in
    the same letters (``eviltwilio.com``)."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    return host == "twilio.com" or host.endswith(".twilio.com")


def rewrite_twilio_url(url: str, api_base_url: str | None) -> str:
    """Send a ``https://*.twilio.com/…`` URL to ``api_base_url`` instead, keeping path and query.

    A base with a path (``http://mock:4010/prefix``) prefixes the Twilio path. URLs on any other
    host are left alone: they are not Twilio's to redirect.
    """
    if api_base_url is None:
        return url
    parts = urlsplit(url)
    if not is_twilio_host(parts.hostname):
        return url
    base = urlsplit(api_base_url)
    return urlunsplit(
        (base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, "")
    )


class RoutingHttpClient(HttpClient):  # type: ignore[misc]  # twilio ships no type information
    """The twilio library's transport, with explicit timeouts and the base-URL rewrite.

    Written against :class:`twilio.http.HttpClient` rather than by tweaking
    ``TwilioHttpClient``: that class takes a single timeout (so a dead host would hold a worker
    for the whole read timeout) and logs every request at INFO.
    """

    def __init__(
        self,
        *,
        api_base_url: str | None,
        connect_timeout: float,
        read_timeout: float,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(log, False, None)
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.api_base_url = api_base_url
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.session = session or requests.Session()

    def rewrite(self, url: str) -> str:
        return rewrite_twilio_url(url, self.api_base_url)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP exchange, never following redirects (callers decide where auth may go)."""
        target = self.rewrite(url)
        # The path carries sids only; phone numbers travel in the body, which is never logged.
        log.debug("twilio http %s %s", method.upper(), urlsplit(target).path)
        body: dict[str, Any] = {}
        if headers and headers.get("Content-Type") in ("application/json", "application/scim+json"):
            body["json"] = data
        else:
            body["data"] = data
        return self.session.request(
            method.upper(),
            target,
            params=dict(params) if params else None,  # type: ignore[arg-type]
            headers=dict(headers) if headers else None,
            auth=auth,
            timeout=(self.connect_timeout, self.read_timeout),
            allow_redirects=False,
            **body,
        )

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        # The library passes these by name, so the names stay although they are ignored.
        timeout: float | None = None,  # noqa: ARG002
        allow_redirects: bool = False,  # noqa: ARG002
    ) -> TwilioResponse:
        """The entry point the twilio library calls for every API request.

        ``timeout`` and ``allow_redirects`` from the library are ignored on purpose: the library
        passes none of its own, and the adapter's explicit connect/read pair must always apply.
        """
        response = self.send(method, uri, params=params, data=data, headers=headers, auth=auth)
        return TwilioResponse(int(response.status_code), response.text, response.headers)


#: Refused by requests before any connection is attempted.
_CONFIGURATION_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)


def _not_sent(exc: requests.RequestException) -> bool:
    """True when the exception proves the request never left this host.

    ``requests`` raises ConnectionError both for "could not connect" and for "the server dropped
    the connection after we sent everything"; only the first is safe to retry, so the urllib3
    cause is inspected rather than trusting the class name.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return False  # may fail mid-stream as well as in the handshake: stay on the safe side
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        # NewConnectionError (refused, unreachable) and NameResolutionError are subclasses.
        return isinstance(cause.reason, urllib3.exceptions.ConnectTimeoutError)
    return isinstance(cause, urllib3.exceptions.ClosedPoolError)


def kind_for_http(status: int, code: int | None, *, idempotent: bool) -> TelephonyErrorKind:
    """Classify an HTTP error answer from Twilio (or a compatible API)."""
    if status == 429 or code in RETRYABLE_CODES:
        return TelephonyErrorKind.RETRYABLE
    if code in PERMANENT_NUMBER_CODES:
        return TelephonyErrorKind.PERMANENT_NUMBER
    if status >= 500:
        return TelephonyErrorKind.RETRYABLE if idempotent else TelephonyErrorKind.UNKNOWN_OUTCOME
    return TelephonyErrorKind.REJECTED


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Remove the numbers we sent (exactly) and anything else that looks like one."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[number]")
    return redact_text(text)


def _int(value: object) -> int | None:
    """A count Twilio sends as a string (``duration``, ``num_media``), None when absent."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 10 else None


def _since(at: datetime | None, since: datetime) -> bool:
    return at is None or at >= since


def _error_code(value: object) -> int | None:
    """Twilio's numeric error code, whatever JSON type it came as."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class TwilioTelephony:
    """:class:`hotline.telephony.ports.Telephony` on Twilio's 2010-04-01 REST API."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base_url: str | None = None,
        connect_timeout: float = 5,
        read_timeout: float = 15,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio account sid and auth token are required")
        if api_base_url is not None:
            base = urlsplit(api_base_url)
            if base.scheme not in ("http", "https") or not base.netloc:
                raise ValueError("api_base_url must be an absolute http(s) URL")
        self._account_sid = account_sid
        self._auth = (account_sid, auth_token)
        self._api_base_url = api_base_url
        self._http = RoutingHttpClient(
            api_base_url=api_base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._client = Client(account_sid, auth_token, http_client=self._http)

    def close(self) -> None:
        """Release pooled connections (tests, worker shutdown); a later request reconnects."""
        self._http.session.close()

    # -- calls -------------------------------------------------------------------------------

    def place_call(self, request: CallRequest) -> PlacedCall:
        kwargs: dict[str, Any] = {"to": request.to, "from_": request.from_}
        if request.url is not None:
            kwargs["url"] = request.url
        else:
            kwargs["twiml"] = request.twiml
        if request.status_callback is not None:
            kwargs["status_callback"] = request.status_callback
            kwargs["status_callback_event"] = list(request.status_callback_events)
            kwargs["status_callback_method"] = "POST"
        if request.machine_detection is not None:
            kwargs["machine_detection"] = request.machine_detection
            if request.async_amd:
                kwargs["async_amd"] = "true"
                if request.async_amd_status_callback is not None:
                    kwargs["async_amd_status_callback"] = request.async_amd_status_callback
            if request.send_digits:
                # Twilio documents that MachineDetection is ignored when SendDigits is present:
                # no AnsweredBy will come for this call, so a machine cannot be told apart.
                log.warning("call with send_digits: Twilio ignores machine detection for it")
        if request.ring_timeout is not None:
            kwargs["timeout"] = request.ring_timeout
        if request.time_limit is not None:
            kwargs["time_limit"] = request.time_limit
        if request.send_digits:
            kwargs["send_digits"] = request.send_digits
        call = self._guarded(
            "place_call",
            lambda: self._client.calls.create(**kwargs),
            idempotent=False,
            secrets=(request.to, request.from_),
        )
        log.info("call placed: %s (%s)", call.sid, call.status)
        return PlacedCall(sid=str(call.sid), status=str(call.status))

    def update_call(self, call_sid: str, update: CallUpdate) -> None:
        kwargs: dict[str, Any] = {}
        if update.twiml is not None:
            kwargs["twiml"] = update.twiml
        elif update.url is not None:
            kwargs["url"] = update.url
        else:
            kwargs["status"] = update.status
        self._guarded(
            "update_call",
            lambda: self._client.calls(call_sid).update(**kwargs),
            idempotent=False,
        )
        log.info("call updated: %s (%s)", call_sid, ", ".join(sorted(kwargs)))

    def fetch_call_status(self, call_sid: str) -> str:
        call = self._guarded(
            "fetch_call_status", lambda: self._client.calls(call_sid).fetch(), idempotent=True
        )
        return str(call.status)

    # -- messages ----------------------------------------------------------------------------

    def send_sms(self, request: SmsRequest) -> SentMessage:
        kwargs: dict[str, Any] = {"to": request.to, "from_": request.from_}
        if request.body:
            kwargs["body"] = request.body
        if request.media_urls:
            kwargs["media_url"] = list(request.media_urls)
        if request.status_callback is not None:
            kwargs["status_callback"] = request.status_callback
        message = self._guarded(
            "send_sms",
            lambda: self._client.messages.create(**kwargs),
            idempotent=False,
            secrets=(request.to, request.from_),
        )
        log.info("message sent: %s (%s)", message.sid, message.status)
        return SentMessage(sid=str(message.sid), status=str(message.status))

    # -- media -------------------------------------------------------------------------------

    def fetch_media(self, url: str) -> FetchedMedia:
        """Download a recording (as WAV) or an MMS picture, following Twilio's CDN redirect.

        The account's credentials go only to Twilio's API (or the configured base), never to the
        CDN a redirect points at, and never to an arbitrary host: the URL comes from a webhook.
        """
        current = self._media_download_url(url)
        if not self._is_provider_url(current):
            raise TelephonyError(
                TelephonyErrorKind.REJECTED, "fetch_media: refusing a URL outside the provider"
            )
        for _ in range(MAX_MEDIA_REDIRECTS + 1):
            response = self._guarded("fetch_media", self._media_getter(current), idempotent=True)
            location = response.headers.get("Location")
            if response.is_redirect and location:
                # Relative to the URL actually requested (after the base rewrite).
                current = urljoin(self._http.rewrite(current), location)
                continue
            if response.status_code >= 400:
                raise self._http_error("fetch_media", response, idempotent=True)
            content_type = response.headers.get("Content-Type", "application/octet-stream")
            return FetchedMedia(content=response.content, content_type=content_type)
        raise TelephonyError(TelephonyErrorKind.REJECTED, "fetch_media: too many redirects")

    def delete_recording(self, recording_sid: str) -> None:
        self._delete("delete_recording", lambda: self._client.recordings(recording_sid).delete())
        log.info("recording deleted: %s", recording_sid)

    def delete_media(self, url: str) -> None:
        """Delete the API resource behind a media URL (an MMS picture, or a recording)."""
        path = urlsplit(url).path
        accounts = self._client.api.v2010.accounts
        if match := _MESSAGE_MEDIA_PATH_RE.search(path):
            account, message, sid = match["account"], match["message"], match["sid"]
            self._delete(
                "delete_media", lambda: accounts(account).messages(message).media(sid).delete()
            )
        elif match := _RECORDING_PATH_RE.search(path):
            account, sid = match["account"], match["sid"]
            self._delete("delete_media", lambda: accounts(account).recordings(sid).delete())
        else:
            raise TelephonyError(
                TelephonyErrorKind.REJECTED, "delete_media: not a Twilio media URL"
            )
        log.info("media deleted: %s", match["sid"])

    # -- the provider's logs (outage reconciliation) -------------------------------------------

    def list_inbound_messages(self, to: str, since: datetime) -> list[ProviderMessage]:
        """``GET Messages.json?To=…&DateSent>=…``, every page. Twilio's date filters may be by
        day, so the window is applied again here."""
        rows = self._guarded(
            "list_inbound_messages",
            lambda: self._client.messages.list(
                to=to, date_sent_after=since, limit=MAX_LISTED, page_size=100
            ),
            idempotent=True,
        )
        return [
            ProviderMessage(
                sid=str(m.sid),
                from_=str(m.from_ or ""),
                body=str(m.body or ""),
                sent_at=m.date_sent,
                num_media=_int(m.num_media) or 0,
            )
            for m in rows
            if str(m.direction) == "inbound" and _since(m.date_sent, since)
        ]

    def list_inbound_calls(self, to: str, since: datetime) -> list[ProviderCall]:
        """``GET Calls.json?To=…&StartTime>=…``, every page."""
        rows = self._guarded(
            "list_inbound_calls",
            lambda: self._client.calls.list(
                to=to, start_time_after=since, limit=MAX_LISTED, page_size=100
            ),
            idempotent=True,
        )
        return [
            ProviderCall(
                sid=str(c.sid),
                # The library names it ``_from`` on calls (``from_`` on messages).
                from_=str(getattr(c, "_from", None) or ""),
                status=str(c.status),
                started_at=c.start_time,
                duration_seconds=_int(c.duration),
            )
            for c in rows
            if str(c.direction) == "inbound" and _since(c.start_time, since)
        ]

    def list_recordings(self, since: datetime) -> list[ProviderRecording]:
        """``GET Recordings.json?DateCreated>=…``, every page."""
        rows = self._guarded(
            "list_recordings",
            lambda: self._client.recordings.list(
                date_created_after=since, limit=MAX_LISTED, page_size=100
            ),
            idempotent=True,
        )
        base = "https://api.twilio.com/2010-04-01/Accounts"
        return [
            ProviderRecording(
                sid=str(r.sid),
                call_sid=str(r.call_sid) if r.call_sid else None,
                url=str(r.media_url or f"{base}/{self._account_sid}/Recordings/{r.sid}"),
                status=str(r.status),
                created_at=r.date_created,
                duration_seconds=_int(r.duration),
            )
            for r in rows
            if _since(r.date_created, since)
        ]

    # -- plumbing ----------------------------------------------------------------------------

    def _media_download_url(self, url: str) -> str:
        """Twilio serves a recording's audio at its URL with ``.wav`` or ``.mp3`` (no extension
        also gives WAV; ``.json`` gives metadata). Ask for WAV explicitly: MP3 is refused for
        encrypted recordings (error 16109)."""
        parts = urlsplit(url)
        match = _RECORDING_PATH_RE.search(parts.path)
        if match and match["ext"] in (None, ".json"):
            stem = parts.path[: len(parts.path) - len(match["ext"] or "")]
            return urlunsplit(parts._replace(path=stem + ".wav"))
        return url

    def _media_getter(self, url: str) -> Callable[[], requests.Response]:
        auth = self._auth if self._is_provider_url(url) else None
        return lambda: self._http.send("GET", url, auth=auth, headers={"Accept": "*/*"})

    def _is_provider_url(self, url: str) -> bool:
        parts = urlsplit(url)
        if is_twilio_host(parts.hostname):
            return True
        if self._api_base_url is None:
            return False
        base = urlsplit(self._api_base_url)
        return (parts.scheme, parts.netloc.lower()) == (base.scheme, base.netloc.lower())

    def _delete(self, operation: str, delete: Callable[[], object]) -> None:
        try:
            self._attempt(operation, delete, idempotent=True)
        except TelephonyError as error:
            if error.http_status == 404:
                # Already gone (an earlier attempt went through): that is what we wanted.
                log.info("%s: already deleted", operation)
                return
            log.warning("%s failed: %r", operation, error)
            raise

    def _guarded(
        self,
        operation: str,
        action: Callable[[], T],
        *,
        idempotent: bool,
        secrets: tuple[str, ...] = (),
    ) -> T:
        try:
            return self._attempt(operation, action, idempotent=idempotent, secrets=secrets)
        except TelephonyError as error:
            log.warning("%s failed: %r", operation, error)
            raise

    def _attempt(
        self,
        operation: str,
        action: Callable[[], T],
        *,
        idempotent: bool,
        secrets: tuple[str, ...] = (),
    ) -> T:
        """Run one library call and translate every failure into a classified TelephonyError."""
        cause: BaseException | None = None
        try:
            return action()
        except TwilioException as exc:
            # Not chained: the library's text quotes the number and would reappear in tracebacks.
            error = self._twilio_error(operation, exc, idempotent=idempotent, secrets=secrets)
        except requests.RequestException as exc:
            error = self._transport_error(operation, exc, idempotent=idempotent)
            cause = exc  # URLs and socket errors only: the form body is not part of its text
        except ValueError:
            # A 2xx whose body is not the JSON Twilio promised: the action most likely happened.
            kind = (
                TelephonyErrorKind.RETRYABLE if idempotent else TelephonyErrorKind.UNKNOWN_OUTCOME
            )
            error = TelephonyError(kind, f"{operation}: unreadable answer from Twilio")
        raise error from cause

    def _twilio_error(
        self,
        operation: str,
        exc: TwilioException,
        *,
        idempotent: bool,
        secrets: tuple[str, ...],
    ) -> TelephonyError:
        # TwilioRestException (legacy bodies) and TwilioServiceException (RFC 9457 bodies) both
        # carry ``status`` and ``code``; any other TwilioException never reached the network.
        status = getattr(exc, "status", None)
        if not isinstance(status, int):
            return TelephonyError(
                TelephonyErrorKind.REJECTED, f"{operation}: {_scrub(str(exc), secrets)}"
            )
        code = _error_code(getattr(exc, "code", None))
        if code == status:
            code = None  # the library fills ``code`` with the HTTP status when the body had none
        detail = getattr(exc, "msg", None) or getattr(exc, "detail", None) or ""
        return TelephonyError(
            kind_for_http(status, code, idempotent=idempotent),
            f"{operation}: HTTP {status}, Twilio code {code}: {_scrub(str(detail), secrets)}",
            code=code,
            http_status=status,
        )

    def _transport_error(
        self, operation: str, exc: requests.RequestException, *, idempotent: bool
    ) -> TelephonyError:
        if isinstance(exc, _CONFIGURATION_ERRORS):
            kind = TelephonyErrorKind.REJECTED  # a bad URL never leaves this process
            what = "bad request URL"
        elif _not_sent(exc):
            kind = TelephonyErrorKind.RETRYABLE
            what = "could not connect"
        else:
            kind = (
                TelephonyErrorKind.RETRYABLE if idempotent else TelephonyErrorKind.UNKNOWN_OUTCOME
            )
            what = (
                "no answer after sending"
                if isinstance(exc, requests.exceptions.ReadTimeout)
                else "connection broken after sending"
            )
        return TelephonyError(kind, f"{operation}: {what} ({type(exc).__name__})")

    def _http_error(
        self, operation: str, response: requests.Response, *, idempotent: bool
    ) -> TelephonyError:
        """Classify an error answer we received outside the library (media downloads)."""
        code: int | None = None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            code = _error_code(payload.get("code"))
        status = response.status_code
        error = TelephonyError(
            kind_for_http(status, code, idempotent=idempotent),
            f"{operation}: HTTP {status}, Twilio code {code}",
            code=code,
            http_status=status,
        )
        log.warning("%s failed: %r", operation, error)
        return error
