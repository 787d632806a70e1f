"""A local fake of Twilio's REST API (2010-04-01): a real HTTP server on 127.0.0.1.

Why a real server rather than a mocked ``requests``: the adapter's job is mostly about the
transport (timeouts, connections that fail before or after sending, the base-URL rewrite), which
only a socket can exercise honestly.

It serves what the hotline uses: Calls create/fetch/update/list, Messages create/list, Recordings
fetch/delete/list (the lists filtered and paged as Twilio does), recording audio and MMS pictures
(outside the OpenAPI document, which models only the ``.json`` resources), Media delete. Every
request is recorded first (so a test can see that a request *arrived* even when the client gave
up), then checked: basic auth, then the OpenAPI
contract (see :mod:`contract`), then any failure the test asked for, then the magic-number table.
Problems (contract violations, requests the fake cannot serve, invalid answers of its own) are
collected in :attr:`TwilioFake.problems`; the pytest fixture fails the test on any of them.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .contract import Contract, Operation

API = "/2010-04-01"
HEX32 = "[0-9a-fA-F]{32}"

#: Twilio's test magic numbers (NOTES.md "Test magic numbers"): (channel, To) → error code.
DEFAULT_NUMBER_ERRORS: dict[tuple[str, str], int] = {
    ("sms", "+15005550001"): 21211,
    ("sms", "+15005550002"): 21612,
    ("sms", "+15005550004"): 21610,
    ("sms", "+15005550009"): 21614,
    ("call", "+15005550001"): 21217,
    ("call", "+15005550002"): 21214,
}

#: Error texts shaped like Twilio's; like Twilio's, some quote the number (the adapter must not
#: let it through to logs).
ERROR_MESSAGES: dict[int, str] = {
    20001: "Invalid parameter: {detail}",
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service is unavailable. Please try again",
    21211: "The 'To' number {to} is not a valid phone number.",
    21214: "'To' phone number cannot be reached",
    21217: "Phone number does not appear to be valid",
    21220: "Call is not in-progress. Cannot redirect.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number: {from_} via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
}
STATUS_CODES = {429: 20429, 500: 20500, 503: 20503}

FINAL_CALL_STATES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

#: A tiny but well-formed WAV (44-byte header + 8 samples of silence).
WAV_BYTES = (
    b"RIFF" + (36 + 8).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
    + b"data" + (8).to_bytes(4, "little") + b"\x80" * 8
)  # fmt: skip


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    #: In order, repeated names kept (StatusCallbackEvent, MediaUrl repeat).
    form: list[tuple[str, str]]
    headers: dict[str, str]
    #: The basic-auth credentials matched the fake's account.
    authorized: bool
    #: operationId in the OpenAPI document, or a name for the media routes outside it.
    operation: str | None
    #: time.monotonic() when the request reached the fake (for latency measurements).
    arrived: float = 0.0

    @property
    def fields(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for name, value in self.form:
            grouped.setdefault(name, []).append(value)
        return grouped

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


ARRIVED_KEY = "twilio_fake.arrived"


@dataclass
class Fault:
    """One injected failure, used up by the next matching request."""

    kind: str  # "status" | "hang" | "drop"
    status: int = 500
    code: int | None = None
    #: Carry the request out before failing (the call exists although the client saw an error).
    process: bool = False
    seconds: float = 0.0
    method: str | None = None
    path_contains: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _ResourceRequest:
    """What a resource route reads of a request that passed every check."""

    #: The path's parameters (Sid, MessageSid, AccountSid); empty for the media routes.
    params: Mapping[str, str]
    path: str
    #: Form fields in order, repeated names kept.
    fields: dict[str, list[str]]

    @classmethod
    def of(
        cls, params: Mapping[str, str], path: str, form: Sequence[tuple[str, str]]
    ) -> _ResourceRequest:
        fields: dict[str, list[str]] = {}
        for name, value in form:
            fields.setdefault(name, []).append(value)
        return cls(params, path, fields)

    @property
    def one(self) -> dict[str, str]:
        """Each field's first value."""
        return {name: values[0] for name, values in self.fields.items()}


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request is noise in test output; the fake records requests itself


# How long a test's adapter waits for the fake. The fake answers in milliseconds, but a loaded CI
# machine can stall a thread for seconds (a 2 s limit once failed a test that expected an answer);
# a test about timeouts sets a short one just before the request it makes hang.
PATIENT_READ_TIMEOUT = 30.0


class TwilioFake:
    """``with TwilioFake(contract=...) as fake:``, then point the adapter at ``fake.base_url``."""

    def __init__(
        self,
        *,
        contract: Contract | None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        number_errors: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.contract = contract
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.number_errors: dict[tuple[str, str], int] = dict(
            DEFAULT_NUMBER_ERRORS if number_errors is None else number_errors
        )
        self.requests: list[RecordedRequest] = []
        self.problems: list[str] = []
        self.calls: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.recordings: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self._cdn: dict[str, tuple[bytes, str]] = {}
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TwilioFake:
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake handlers that are hanging on purpose
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> TwilioFake:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake is not running"
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what tests tell it ------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        code: int | None = None,
        process: bool = False,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` and a Twilio error body
        (code 20429 for 429, 20500/20503 for 500/503 unless ``code`` says otherwise)."""
        with self._lock:
            self._faults.extend(
                Fault("status", status, code, process, 0.0, method, path_contains)
                for _ in range(count)
            )

    def hang_next(
        self,
        count: int = 1,
        *,
        seconds: float = 5.0,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Carry out the next request(s), then answer only after ``seconds`` (or at stop)."""
        with self._lock:
            self._faults.extend(
                Fault("hang", 200, None, True, seconds, method, path_contains) for _ in range(count)
            )

    def drop_next(
        self, count: int = 1, *, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Carry out the next request(s), then close the connection without answering."""
        with self._lock:
            self._faults.extend(
                Fault("drop", 0, None, True, 0.0, method, path_contains) for _ in range(count)
            )

    def fail_number(self, number: str, code: int, *, channel: str = "both") -> None:
        """Refuse calls and/or messages to ``number`` with Twilio error ``code``."""
        for ch in ("call", "sms") if channel == "both" else (channel,):
            self.number_errors[(ch, number)] = code

    def add_recording(
        self,
        content: bytes = WAV_BYTES,
        *,
        call_sid: str | None = None,
        created_at: datetime | None = None,
    ) -> tuple[str, str]:
        """A recording as Twilio would hold it; returns (sid, the URL a webhook would carry)."""
        sid = new_sid("RE")
        with self._lock:
            self.recordings[sid] = {
                "content": content,
                "call_sid": call_sid or new_sid("CA"),
                "date": created_at or datetime.now(UTC),
            }
        return sid, f"https://api.twilio.com{API}/Accounts/{self.account_sid}/Recordings/{sid}"

    def add_mms_media(
        self, content: bytes, content_type: str = "image/jpeg", *, message_sid: str | None = None
    ) -> tuple[str, str]:
        """An MMS picture; returns (sid, its MediaUrl as an incoming-SMS webhook carries it)."""
        sid = new_sid("ME")
        message = message_sid or new_sid("MM")
        with self._lock:
            self.media[sid] = {"content": content, "type": content_type, "message": message}
        url = f"https://api.twilio.com{API}/Accounts/{self.account_sid}/Messages/{message}/Media/{sid}"
        return sid, url

    def add_inbound_message(self, from_: str, to: str, body: str, sent_at: datetime) -> str:
        """A text that reached the account's number (whether or not its webhook was answered)."""
        sid = new_sid("SM")
        with self._lock:
            self.messages[sid] = {
                "fields": {"From": [from_], "To": [to], "Body": [body]},
                "status": "received",
                "direction": "inbound",
                "date": sent_at,
            }
        return sid

    def add_inbound_call(
        self, from_: str, to: str, started_at: datetime, *, status: str = "completed",
        duration: int = 30,
    ) -> str:  # fmt: skip
        sid = new_sid("CA")
        with self._lock:
            self.calls[sid] = {"to": to, "from": from_, "status": status, "fields": {},
                               "direction": "inbound", "date": started_at,
                               "duration": duration}  # fmt: skip
        return sid

    def set_call_status(self, call_sid: str, status: str) -> None:
        with self._lock:
            self.calls[call_sid]["status"] = status

    def requests_to(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    def take_problems(self) -> list[str]:
        """Hand over the problems seen so far (for tests that provoke them on purpose)."""
        with self._lock:
            problems, self.problems = self.problems, []
        return problems

    # -- the HTTP side -----------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # Stamped before the body is parsed or checked against the contract.
        environ[ARRIVED_KEY] = time.monotonic()
        request = Request(environ)
        try:
            answer = self._handle(request, environ)
        except Exception as exc:  # noqa: BLE001
            # Anything at all on purpose: a bug in the fake must fail the test (a problem and a
            # 500), not hang it or vanish into the server thread's log.
            with self._lock:
                self.problems.append(f"fake crashed on {request.method} {request.path}: {exc!r}")
            answer = self._error(500, 20500, path=request.path)
        response = Response(answer.body, status=answer.status, headers=answer.headers)
        if answer.content_type is None:
            response.headers.pop("Content-Type", None)
        else:
            response.content_type = answer.content_type
        return response(environ, start_response)

    def _handle(self, request: Request, environ: Mapping[str, Any]) -> _Answer:
        """Record the request, refuse it if Twilio would, then serve it, failing as the test
        asked: a fault that does not carry the request out answers before it is served."""
        method, path = request.method, request.path
        form = list(request.form.items(multi=True))
        query = list(request.args.items(multi=True))
        authorized = self._authorized(request)

        if (cdn := re.fullmatch(r"/cdn/(\w+)", path)) and method == "GET":
            # A signed CDN URL: no Twilio credentials needed (and none should be sent).
            self._record(request, query, form, authorized, "MediaCdn")
            return self._serve_cdn(cdn[1], path)

        found = self.contract.find(method, path) if self.contract else None
        op, params = found if found else (None, {})
        route = op.operation_id if op else _media_route(method, path)
        self._record(request, query, form, authorized, route)

        if not authorized:
            return self._error(401, 20003)
        if route is None:
            known = self.contract is not None and self.contract.knows_path(path)
            self._problem(f"no {method} operation for {path} in the spec or the fake")
            return self._error(405 if known else 404, 20404, path=path)
        refusal = self._contract_refusal(
            op, params, query, form, request.content_type
        ) or self._other_account_refusal(op, params, path)
        if refusal is not None:
            return refusal

        fault = self._take_fault(method, path)
        if fault is not None and fault.kind == "status" and not fault.process:
            return self._fault_error(fault)

        if route in LISTS:
            answer = self._list(route, path, query)
        else:
            answer = self._serve(route, _ResourceRequest.of(params, path, form))
        self._check_own_answer(op, answer)
        if fault is None:
            return answer
        return self._fail_after_serving(fault, answer, environ)

    def _authorized(self, request: Request) -> bool:
        auth = request.authorization
        return (
            auth is not None
            and auth.type == "basic"
            and auth.username == self.account_sid
            and auth.password == self.auth_token
        )

    def _serve_cdn(self, token: str, path: str) -> _Answer:
        if token not in self._cdn:
            return self._error(404, 20404, path=path)
        content, content_type = self._cdn[token]
        return _Answer(200, content, content_type)

    def _contract_refusal(
        self,
        op: Operation | None,
        params: Mapping[str, str],
        query: Sequence[tuple[str, str]],
        form: Sequence[tuple[str, str]],
        content_type: str | None,
    ) -> _Answer | None:
        """Twilio's 400 for a request its OpenAPI document does not allow; each violation is also
        a problem, so the test fails even if the client copes with the 400."""
        if op is None or self.contract is None:
            return None
        violations = self.contract.check_request(op, params, query, form, content_type)
        if not violations:
            return None
        for violation in violations:
            self._problem(f"contract violation: {violation}")
        return self._error(400, 20001, detail="; ".join(violations))

    def _other_account_refusal(
        self, op: Operation | None, params: Mapping[str, str], path: str
    ) -> _Answer | None:
        """Twilio's 404 for a resource of another account than the fake's."""
        if params.get("AccountSid", self.account_sid) != self.account_sid or (
            op is None and f"/Accounts/{self.account_sid}/" not in path
        ):
            return self._error(404, 20404, path=path)
        return None

    def _fault_error(self, fault: Fault) -> _Answer:
        return self._error(fault.status, fault.code or STATUS_CODES.get(fault.status, 20500))

    def _check_own_answer(self, op: Operation | None, answer: _Answer) -> None:
        """The fake's answers are held to the spec too: a test passing against a wrong answer
        would prove nothing."""
        if op is not None and self.contract is not None:
            for problem in self.contract.check_response(op, answer.status, answer.body):
                self._problem(f"the fake's own answer breaks the spec: {problem}")

    def _fail_after_serving(
        self, fault: Fault, answer: _Answer, environ: Mapping[str, Any]
    ) -> _Answer:
        """A fault that carries the request out first: the resource exists, the client sees an
        error, a late answer or none at all."""
        if fault.kind == "status":
            return self._fault_error(fault)
        if fault.kind == "hang":
            self._release.wait(fault.seconds)
        elif fault.kind == "drop":
            sock: socket.socket = environ["werkzeug.socket"]
            sock.shutdown(socket.SHUT_RDWR)  # the client sees the connection close, no answer
        return answer

    def _serve(self, route: str, request: _ResourceRequest) -> _Answer:
        serve = _RESOURCE_ROUTES.get(route)
        if serve is not None:
            with self._lock:
                return serve(self, request)
        self._problem(f"the fake does not implement {route}")
        return self._error(501, 20500)

    # One method per route of _RESOURCE_ROUTES, each called with the lock held.

    def _create_call(self, request: _ResourceRequest) -> _Answer:
        one = request.one
        if code := self.number_errors.get(("call", one.get("To", ""))):
            return self._error(400, code, to=one.get("To"), from_=one.get("From"))
        sid = new_sid("CA")
        self.calls[sid] = {"to": one["To"], "from": one["From"], "status": "queued",
                           "fields": request.fields}  # fmt: skip
        return _json(201, self._call_json(sid))

    def _fetch_call(self, request: _ResourceRequest) -> _Answer:
        if request.params["Sid"] not in self.calls:
            return self._error(404, 20404, path=request.path)
        return _json(200, self._call_json(request.params["Sid"]))

    def _update_call(self, request: _ResourceRequest) -> _Answer:
        """A new status sticks only while the call is live; a redirect (no Status) of a call that
        has ended is Twilio's 21220."""
        call = self.calls.get(request.params["Sid"])
        if call is None:
            return self._error(404, 20404, path=request.path)
        if "Status" in request.one:
            if call["status"] not in FINAL_CALL_STATES:
                call["status"] = request.one["Status"]
        elif call["status"] in FINAL_CALL_STATES:
            return self._error(400, 21220)
        call.setdefault("updates", []).append(request.fields)
        return _json(200, self._call_json(request.params["Sid"]))

    def _create_message(self, request: _ResourceRequest) -> _Answer:
        one = request.one
        if code := self.number_errors.get(("sms", one.get("To", ""))):
            return self._error(400, code, to=one.get("To"), from_=one.get("From"))
        sid = new_sid("MM" if "MediaUrl" in request.fields else "SM")
        self.messages[sid] = {"fields": request.fields, "status": "queued"}
        return _json(201, self._message_json(sid))

    def _fetch_recording(self, request: _ResourceRequest) -> _Answer:
        if request.params["Sid"] not in self.recordings:
            return self._error(404, 20404, path=request.path)
        return _json(200, self._recording_json(request.params["Sid"]))

    def _delete_recording(self, request: _ResourceRequest) -> _Answer:
        if request.params["Sid"] not in self.recordings:
            return self._error(404, 20404, path=request.path)
        del self.recordings[request.params["Sid"]]
        return _Answer(204, content_type=None)

    def _delete_media(self, request: _ResourceRequest) -> _Answer:
        item = self.media.get(request.params["Sid"])
        if item is None or item["message"] != request.params["MessageSid"]:
            return self._error(404, 20404, path=request.path)
        del self.media[request.params["Sid"]]
        return _Answer(204, content_type=None)

    def _recording_audio(self, request: _ResourceRequest) -> _Answer:
        sid = request.path.rsplit("/", 1)[1].split(".")[0]
        if sid not in self.recordings:
            return self._error(404, 20404, path=request.path)
        mp3 = request.path.endswith(".mp3")
        return _Answer(200, self.recordings[sid]["content"], "audio/mpeg" if mp3 else "audio/x-wav")

    def _media_content(self, request: _ResourceRequest) -> _Answer:
        sid = request.path.rsplit("/", 1)[1]
        if sid not in self.media:
            return self._error(404, 20404, path=request.path)
        # Twilio redirects to a signed CDN URL on another host: "localhost" is another
        # host name than 127.0.0.1 to the client, so it must not send credentials there.
        token = secrets.token_hex(8)
        self._cdn[token] = (self.media[sid]["content"], self.media[sid]["type"])
        location = f"http://localhost:{self.port}/cdn/{token}"
        return _Answer(307, b"", None, {"Location": location})

    def _list(self, route: str, path: str, query: Sequence[tuple[str, str]]) -> _Answer:
        """A list resource: filtered by the query (``Name>``/``Name<`` are Twilio's ">=" and "<="
        as they appear in a query string), oldest last as Twilio lists, paged by PageSize and
        Page with a next_page_uri the client follows."""
        key, date_filter = LISTS[route]
        args = dict(query)
        with self._lock:
            store = {"ListMessage": self.messages, "ListCall": self.calls,
                     "ListRecording": self.recordings}[route]  # fmt: skip
            items = []
            for sid, item in store.items():
                if "date" not in item:
                    continue  # made through the API by the test's app: not what is listed here
                if (
                    "To" in args
                    and item.get("fields", {}).get("To", [item.get("to")])[0] != args["To"]
                ):
                    continue
                if f"{date_filter}>" in args and item["date"] < _parse_date(
                    args[f"{date_filter}>"]
                ):
                    continue
                items.append((item["date"], sid))
            items.sort(reverse=True)
            size = int(args.get("PageSize", "50"))
            page = int(args.get("Page", "0"))
            chunk = items[page * size : (page + 1) * size]
            render = {"ListMessage": self._message_json, "ListCall": self._call_json,
                      "ListRecording": self._recording_json}[route]  # fmt: skip
            rows = [render(sid) for _, sid in chunk]

        def uri(page_number: int) -> str:
            kept = [(k, v) for k, v in query if k not in ("Page", "PageToken")]
            kept += [("Page", str(page_number)), ("PageToken", f"PT{page_number}")]
            return f"{path}?{urlencode(kept)}"

        more = (page + 1) * size < len(items)
        return _json(
            200,
            {
                key: rows,
                "end": page * size + max(len(rows) - 1, 0),
                "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) if more else None,
                "page": page,
                "page_size": size,
                "previous_page_uri": uri(page - 1) if page else None,
                "start": page * size,
                "uri": f"{path}?{urlencode(list(query))}",
            },
        )

    # -- bodies ------------------------------------------------------------------------------

    def _call_json(self, sid: str) -> dict[str, Any]:
        call = self.calls[sid]
        now = _rfc2822()
        base = f"{API}/Accounts/{self.account_sid}/Calls/{sid}"
        return {
            "sid": sid,
            "date_created": now,
            "date_updated": now,
            "parent_call_sid": None,
            "account_sid": self.account_sid,
            "to": call["to"],
            "to_formatted": call["to"],
            "from": call["from"],
            "from_formatted": call["from"],
            "phone_number_sid": None,
            "status": call["status"],
            "start_time": format_datetime(call["date"]) if "date" in call else None,
            "end_time": None,
            "duration": str(call["duration"]) if "duration" in call else None,
            "price": None,
            "price_unit": "USD",
            "direction": call.get("direction", "outbound-api"),
            "answered_by": None,
            "api_version": "2010-04-01",
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": f"{base}.json",
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json",
                "recordings": f"{base}/Recordings.json",
                "events": f"{base}/Events.json",
            },
        }

    def _message_json(self, sid: str) -> dict[str, Any]:
        message = self.messages[sid]
        fields = message["fields"]
        now = _rfc2822()
        base = f"{API}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "body": fields.get("Body", [""])[0],
            "num_segments": "1",
            "direction": message.get("direction", "outbound-api"),
            "from": fields.get("From", [None])[0],
            "to": fields["To"][0],
            "date_updated": now,
            "price": None,
            "error_message": None,
            "uri": f"{base}.json",
            "account_sid": self.account_sid,
            "num_media": str(len(fields.get("MediaUrl", []))),
            "status": message["status"],
            "messaging_service_sid": None,
            "sid": sid,
            "date_sent": format_datetime(message["date"]) if "date" in message else None,
            "date_created": now,
            "error_code": None,
            "price_unit": "USD",
            "api_version": "2010-04-01",
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
        }

    def _recording_json(self, sid: str) -> dict[str, Any]:
        now = _rfc2822()
        created = (
            format_datetime(self.recordings[sid]["date"]) if "date" in self.recordings[sid] else now
        )
        base = f"{API}/Accounts/{self.account_sid}/Recordings/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "call_sid": self.recordings[sid]["call_sid"],
            "conference_sid": None,
            "date_created": created,
            "date_updated": now,
            "start_time": now,
            "duration": "1",
            "sid": sid,
            "price": None,
            "price_unit": "USD",
            "status": "completed",
            "channels": 1,
            "source": "RecordVerb",
            "error_code": None,
            "uri": f"{base}.json",
            "encryption_details": None,
            "subresource_uris": {"transcriptions": f"{base}/Transcriptions.json"},
            "media_url": f"https://api.twilio.com{base}",
        }

    def _error(self, status: int, code: int, **details: Any) -> _Answer:
        template = ERROR_MESSAGES.get(code, "Error {code}")
        values = {"path": "", "to": "", "from_": "", "detail": "", "code": code, **details}
        body = {
            "code": code,
            "message": template.format(**values),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        answer = _json(status, body)
        if self.contract is not None:
            for problem in self.contract.check_error_body(answer.body, f"error {code}"):
                self._problem(f"the fake's own error body is wrong: {problem}")
        return answer

    # -- bookkeeping -------------------------------------------------------------------------

    def _record(
        self,
        request: Request,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
        authorized: bool,
        operation: str | None,
    ) -> None:
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=query,
            form=form,
            headers=dict(request.headers.items()),
            authorized=authorized,
            operation=operation,
            arrived=request.environ.get(ARRIVED_KEY, time.monotonic()),
        )
        with self._lock:
            self.requests.append(recorded)

    def _problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    self._faults.remove(fault)
                    return fault
        return None

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(list(self.requests))


def _media_route(method: str, path: str) -> str | None:
    """The media routes Twilio serves outside its OpenAPI document (binary, no ``.json``)."""
    if method != "GET":
        return None
    if re.fullmatch(rf"{API}/Accounts/AC{HEX32}/Recordings/RE{HEX32}(\.wav|\.mp3)?", path):
        return "RecordingAudio"
    if re.fullmatch(rf"{API}/Accounts/AC{HEX32}/Messages/(SM|MM){HEX32}/Media/ME{HEX32}", path):
        return "MediaContent"
    return None


#: The routes that create, fetch, change or delete one resource (or serve its media), by
#: operationId or media route name.
_RESOURCE_ROUTES: dict[str, Callable[[TwilioFake, _ResourceRequest], _Answer]] = {
    "CreateCall": TwilioFake._create_call,
    "FetchCall": TwilioFake._fetch_call,
    "UpdateCall": TwilioFake._update_call,
    "CreateMessage": TwilioFake._create_message,
    "FetchRecording": TwilioFake._fetch_recording,
    "DeleteRecording": TwilioFake._delete_recording,
    "DeleteMedia": TwilioFake._delete_media,
    "RecordingAudio": TwilioFake._recording_audio,
    "MediaContent": TwilioFake._media_content,
}

#: List operations: the key of the items in the answer, and the date the window filters on.
LISTS: dict[str, tuple[str, str]] = {
    "ListMessage": ("messages", "DateSent"),
    "ListCall": ("calls", "StartTime"),
    "ListRecording": ("recordings", "DateCreated"),
}


def _parse_date(value: str) -> datetime:
    """What Twilio accepts in a date filter: ISO 8601 (the library's form), a day, or RFC 2822."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = parsedate_to_datetime(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json(status: int, payload: Mapping[str, Any]) -> _Answer:
    return _Answer(status, json.dumps(payload).encode())


def _rfc2822() -> str:
    return format_datetime(datetime.now(UTC))
