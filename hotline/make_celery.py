"""Entry point for ``celery -A hotline.make_celery worker|beat`` (the Procfile's processes)."""

from __future__ import annotations

from hotline import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
