"""Texts to the hotline: what a text means (pure parsing), what it does to the database, and the
webhook that answers it."""
