"""Experiment: no spacing between calls to one number (``dispatcher.sender.CALL_SPACING`` = 0),
so that a burst shows the dispatch pipeline itself rather than the deliberate 30-second wait
between two calls to the same principal, PSAP or police line.

    .venv/bin/python bench/dispatch_latency.py --worker-app bench.experiments.no_spacing

Only the Celery worker runs this module (gunicorn and beat are unchanged); production code is
not modified. The other experiments build on this one.
"""

from __future__ import annotations

from datetime import timedelta

from dispatcher import sender
from hotline.make_celery import celery_app, flask_app

__all__ = ["celery_app", "flask_app"]

# Read by dispatcher.sender each time a call is about to go out.
sender.CALL_SPACING = timedelta(0)
