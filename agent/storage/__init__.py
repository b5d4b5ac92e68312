"""The agent's one SQLite file: history, alert state and the alert outbox."""
