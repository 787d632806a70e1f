"""Twilio's conventions on the wire, as the simulator copies them: the API version, resource sids,
which URLs and numbers are valid, and the caller-location fields Twilio adds to its webhooks.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

API_VERSION = "2010-04-01"

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def new_sid(prefix: str) -> str:
    """A fresh resource sid: Twilio's two-letter prefix (CA, SM, MM, RE, ME) and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def is_absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def url_path(url: str) -> str:
    return urlsplit(url).path or "/"


def caller_location(prefix: str, number: str) -> list[tuple[str, str]]:
    """Made-up but plausible caller-location fields (Twilio sends them for most numbers)."""
    if number.startswith("+1"):
        city, state, zip_code, country = "SPRINGFIELD", "IL", "62701", "US"
    elif number.startswith("+52"):
        city, state, zip_code, country = "", "", "", "MX"
    else:
        city = state = zip_code = country = ""
    return [
        (f"{prefix}City", city),
        (f"{prefix}Country", country),
        (f"{prefix}State", state),
        (f"{prefix}Zip", zip_code),
    ]
