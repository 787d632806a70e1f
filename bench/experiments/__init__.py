"""Prototypes of dispatcher changes, applied to the Celery worker only by monkeypatching, so the
benchmark can measure a proposed change before production code is touched. Never imported by
the hotline itself."""
