"""The application factory: the Flask app and the services it runs on (database, clock, keys,
phone network, e-mail, job queue, call budget), built from the settings."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

from hotline import wording
from hotline.background.jobs import CeleryJobQueue, JobQueue, LocalJobQueue
from hotline.background.ratelimit import CallRateLimiter, LocalRateLimiter, RedisRateLimiter
from hotline.config import Settings, load_settings
from hotline.core import redaction
from hotline.core.clock import Clock, FileClock, SystemClock
from hotline.core.identity import IdentityKeyring, development_identity_key
from hotline.db import Database
from hotline.email import EmailSender
from hotline.email.dev import DevOutbox
from hotline.email.smtp import SmtpEmailSender, default_sender
from hotline.services import Hotline
from hotline.telephony.ports import Telephony

if TYPE_CHECKING:
    from hotline.telephony.simulated import SimulatedPhoneNetwork

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    telephony: Telephony | None = None,
    email: EmailSender | None = None,
    jobs: JobQueue | None = None,
    instance_path: Path | None = None,
) -> Flask:
    """Build the hotline. With no arguments, configuration comes from the environment.

    Tests pass ``settings`` (or ``environ``), a manual ``clock`` and, where the phone network is
    not under test, a recording fake ``telephony``.
    """
    if settings is None:
        settings = load_settings(environ, instance_path=instance_path)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic narrates every plugin and migration step at INFO: noise in every CLI command's
    # output (`flask --app hotline --help` included). `db upgrade` says where it got to.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    redaction.install()
    # Every language's wording, checked now: a broken edit stops start-up, not a call.
    wording.all_catalogues()
    # The triage's word lists likewise: a broken edit must not leave texts untriaged.
    from sms.triage import word_lists as triage_word_lists

    triage_word_lists()

    app = Flask(
        "hotline",
        instance_path=str(settings.instance_path.resolve()),
        instance_relative_config=True,
    )
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=16 * 1024 * 1024)
    settings.instance_path.mkdir(parents=True, exist_ok=True)

    identity_key = settings.identity_key or development_identity_key(settings.instance_path)
    keyring = IdentityKeyring(identity_key, settings.previous_identity_keys)
    if clock is None:
        clock = FileClock(settings.clock_file) if settings.clock_file else SystemClock()
    db = Database(settings.database_url)

    network, simulator, webhook_token = _phone_network(settings, clock, telephony)
    if email is None:
        email = (
            SmtpEmailSender(settings.smtp_url, sender=default_sender(settings.public_base_url))
            if settings.smtp_url
            else DevOutbox()
        )
    services = Hotline(
        settings=settings,
        db=db,
        clock=clock,
        keyring=keyring,
        telephony=network,
        email=email,
        # Replaced by Celery's queue below when there is a broker.
        jobs=jobs or LocalJobQueue(),
        call_limiter=_call_limiter(settings, clock),
        simulator=simulator,
        webhook_auth_token=webhook_token,
    )
    app.extensions["hotline"] = services

    from hotline.web import health, status_routes
    from ivr_flows import routes as voice_routes
    from sms import routes as sms_routes

    app.register_blueprint(health.bp)
    app.register_blueprint(voice_routes.bp)
    app.register_blueprint(sms_routes.bp)
    app.register_blueprint(status_routes.bp)
    if services.simulator is not None:
        from hotline.dev import phone

        app.register_blueprint(phone.bp)

    from dispatcher import alert_routes

    app.register_blueprint(alert_routes.bp)

    from hotline.background.celery_app import celery_init_app

    celery_app = celery_init_app(app)
    if jobs is None and not settings.embedded_worker:
        services.jobs = CeleryJobQueue(celery_app)

    from hotline.cli import register_cli

    register_cli(app)
    return app


def _call_limiter(settings: Settings, clock: Clock) -> CallRateLimiter:
    if settings.redis_url is None:
        return LocalRateLimiter(settings.calls_per_second, clock.now)
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        # No retries and short timeouts: while Redis is down the budget lets calls go at once
        # instead of holding each Critical call for seconds.
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError:
        # A sentinel:// broker URL: Celery understands it, redis.from_url does not.
        log.warning("call budget kept per process: REDIS_URL is not a plain redis:// URL")
        return LocalRateLimiter(settings.calls_per_second, clock.now)
    return RedisRateLimiter(client, settings.calls_per_second, clock.now)


def _simulator_token(settings: Settings) -> str:
    """The simulated network signs its webhooks with a token kept under instance/, so the web
    process and a separate worker process of a training install agree on it."""
    path = settings.instance_path / "simulator-auth-token"
    if path.exists():
        return path.read_text().strip()
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    try:
        with path.open("x") as fh:
            fh.write(token)
    except FileExistsError:
        return path.read_text().strip()
    path.chmod(0o600)
    return token


def _phone_network(
    settings: Settings, clock: Clock, given: Telephony | None
) -> tuple[Telephony, SimulatedPhoneNetwork | None, str]:
    """(the telephony port, the simulator if it is one, the token webhooks are signed with)."""
    if given is not None:
        return given, None, settings.twilio_auth_token or _simulator_token(settings)
    if settings.uses_twilio:
        from hotline.telephony.twilio_adapter import TwilioTelephony

        assert settings.twilio_account_sid
        assert settings.twilio_auth_token
        adapter = TwilioTelephony(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
        )
        return adapter, None, settings.twilio_auth_token

    from hotline.telephony.simulated import HttpWebhookTransport, SimulatedPhoneNetwork

    token = _simulator_token(settings)
    base = settings.public_base_url
    simulator = SimulatedPhoneNetwork(
        account_sid="AC" + "5" * 32,
        auth_token=token,
        hotline_number=settings.hotline_number,
        voice_url=f"{base}/twilio/voice",
        voice_status_url=f"{base}/twilio/voice/status",
        sms_url=f"{base}/twilio/sms",
        clock=clock,
        transport=HttpWebhookTransport(),
    )
    return simulator, simulator, token
