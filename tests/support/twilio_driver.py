"""Sending webhooks to the app the way Twilio does: form-encoded, signed over the public URL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse


def sign(auth_token: str, url: str, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    items = dict(params) if not isinstance(params, Mapping) else params
    signature: str = RequestValidator(auth_token).compute_signature(url, items)
    return signature


class TwilioDriver:
    def __init__(self, client: FlaskClient, public_base_url: str, auth_token: str) -> None:
        self.client = client
        self.base = public_base_url
        self.token = auth_token

    def post(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        idempotency_token: str | None = None,
        signature: str | None = None,
        signed: bool = True,
    ) -> TestResponse:
        headers: dict[str, str] = {}
        if signed:
            headers["X-Twilio-Signature"] = signature or sign(self.token, self.base + path, params)
        if idempotency_token:
            headers["I-Twilio-Idempotency-Token"] = idempotency_token
        return self.client.post(path, data=dict(params), headers=headers)
