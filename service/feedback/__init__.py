"""The query log and the thumbs up/down store (``store.FeedbackStore``: a SQLite file, or PostgreSQL for replicas)."""
