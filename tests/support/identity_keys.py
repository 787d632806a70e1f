"""Identity keys for the tests."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet


def new_key() -> bytes:
    return base64.urlsafe_b64decode(Fernet.generate_key())
