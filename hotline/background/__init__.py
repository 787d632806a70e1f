"""Work done outside a request: Celery wiring, the embedded worker, the job queue, heartbeats,
the call budget and the catch-up with the provider."""
