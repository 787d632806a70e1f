"""Command-line operations: ``flask --app hotline <group> <command>``."""

from __future__ import annotations

from urllib.parse import urlsplit

import click
from cryptography.fernet import Fernet
from flask import Flask
from flask.cli import AppGroup
from werkzeug.serving import run_simple

from hotline import migrate
from hotline.core.reporters import rotate_reporters
from hotline.services import hotline

db_cli = AppGroup("db", help="Database migrations.")
identity_cli = AppGroup("identity", help="Reporter identity keys.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (the Procfile's release step)."""
    migrate.upgrade(hotline().db.engine)
    click.echo(f"database at revision {migrate.current_revision(hotline().db.engine)}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    migrate.downgrade(hotline().db.engine, revision)
    click.echo(f"database at revision {migrate.current_revision(hotline().db.engine)}")


@db_cli.command("current")
def db_current() -> None:
    engine = hotline().db.engine
    click.echo(f"current {migrate.current_revision(engine)}, head {migrate.head_revision()}")


@identity_cli.command("new-key")
def identity_new_key() -> None:
    """Print a fresh HOTLINE_IDENTITY_KEY."""
    click.echo(Fernet.generate_key().decode("ascii"))


@identity_cli.command("rotate")
def identity_rotate() -> None:
    """Rewrite every reporter record under the current HOTLINE_IDENTITY_KEY.

    Set the new key as HOTLINE_IDENTITY_KEY and the old one in HOTLINE_IDENTITY_KEY_PREVIOUS,
    run this, then the old key may be dropped (keep it while tips with PINs hashed under it are
    still open: a PIN cannot be re-hashed without the PIN).
    """
    services = hotline()
    with services.db.session() as session:
        count = rotate_reporters(session, services.keyring)
    click.echo(f"{count} reporter record(s) rewritten under key {services.keyring.current.key_id}")


@click.command("reconcile")
@click.option("--hours", type=click.IntRange(1, 24 * 30), default=6, show_default=True)
def reconcile_command(hours: int) -> None:
    """Make tips of the texts, calls and recordings of the last HOURS that the provider has and
    the database does not (beat does this every 5 minutes for the last 6 hours)."""
    from datetime import timedelta

    from hotline.background.reconcile import reconcile_with_provider

    report = reconcile_with_provider(hotline(), timedelta(hours=hours))
    click.echo(
        f"recovered {len(report.messages)} text(s), {len(report.recordings)} recording(s), "
        f"{len(report.calls)} call(s) without a recording"
    )


@click.command("dev")
def dev_server() -> None:
    """Run the embedded default: migrations, the sample directory if empty, the in-process
    worker, the simulated phone network and the web server, in one process."""
    from flask import current_app

    from hotline.background.embedded import EmbeddedWorker
    from hotline.directory.cli import load_sample_if_empty

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    services = hotline()
    migrate.upgrade(services.db.engine)
    if load_sample_if_empty(services):
        click.echo("loaded the sample directory (hotline/sample/directory.csv)")
    if not services.settings.embedded_worker:
        raise click.ClickException("`dev` runs the embedded worker; unset REDIS_URL")
    worker = EmbeddedWorker(app)
    worker.start()
    base = urlsplit(services.settings.public_base_url)
    host, port = base.hostname or "127.0.0.1", base.port or 5000
    click.echo(f"hotline running at {services.settings.public_base_url} (Ctrl-C to stop)")
    try:
        # Not app.run(): Flask ignores it inside a `flask` command. Threaded, because the
        # simulated network calls the app's webhooks while a browser request may be waiting.
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        worker.stop()


def register_cli(app: Flask) -> None:
    from dispatcher.calendar_cli import calendar_cli
    from hotline.directory.cli import directory_cli

    app.cli.add_command(db_cli)
    app.cli.add_command(identity_cli)
    app.cli.add_command(directory_cli)
    app.cli.add_command(dev_server)
    app.cli.add_command(reconcile_command)
    app.cli.add_command(calendar_cli)
