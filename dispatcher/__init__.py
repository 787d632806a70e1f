"""Who is told about a tip, how and by when: levels and deadlines, business calendars, the plan,
the outbox and its sending, the alert call, confirmation and the watchdog."""
