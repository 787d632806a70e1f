"""Helpers for tests that drive the simulated phone network against a Flask app in-process."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask

from hotline.telephony.simulated import WebhookReply


class FlaskClientTransport:
    """A WebhookTransport that posts to a Flask app through its test client.

    The full URL is kept (scheme, host, query), so ``request.url`` in the app is exactly the URL
    the simulator signed, as it is for Twilio behind a correctly configured proxy.
    """

    def __init__(self, app: Flask) -> None:
        self._client = app.test_client()

    def post(
        self, url: str, params: list[tuple[str, str]], headers: dict[str, str]
    ) -> WebhookReply:
        response = self._client.post(
            url,
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )
        return WebhookReply(
            status=response.status_code,
            content_type=response.content_type or "",
            body=response.get_data(as_text=True),
        )

    def get(self, url: str, headers: dict[str, str]) -> WebhookReply:
        response = self._client.get(url, headers=headers)
        return WebhookReply(
            status=response.status_code,
            content_type=response.content_type or "",
            body=response.get_data(as_text=True),
        )
