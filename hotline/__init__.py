"""Safe-tip hotline: an anonymous, telephony-first school-safety tip line."""

from hotline.app import create_app

__all__ = ["create_app"]
