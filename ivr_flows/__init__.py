"""The voice menu a caller hears: the pure flow, its prompts per language, the TwiML rendering, the
webhooks, and where the flow meets the database."""
