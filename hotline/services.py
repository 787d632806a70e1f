"""The hotline's wiring: what a request, a task or a CLI command needs, built once per app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

from hotline.background.jobs import JobQueue
from hotline.background.ratelimit import CallRateLimiter
from hotline.config import Settings
from hotline.core.clock import Clock
from hotline.core.identity import IdentityKeyring
from hotline.db import Database
from hotline.email import EmailSender
from hotline.telephony.ports import Telephony

if TYPE_CHECKING:
    from hotline.telephony.simulated import SimulatedPhoneNetwork


@dataclass
class Hotline:
    settings: Settings
    db: Database
    clock: Clock
    keyring: IdentityKeyring
    telephony: Telephony
    email: EmailSender
    jobs: JobQueue
    call_limiter: CallRateLimiter
    #: The simulated network when there are no Twilio credentials (also ``telephony``).
    simulator: SimulatedPhoneNetwork | None = None
    #: Auth token webhooks are signed with: Twilio's, or the simulated network's.
    webhook_auth_token: str = ""


def hotline(app: Flask | None = None) -> Hotline:
    """The services of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    services: Hotline = target.extensions["hotline"]
    return services
