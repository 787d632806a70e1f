"""The hotline's domain services: tips, reporters and their identity, the timeline, call status,
confirmation, log redaction and the clock."""
