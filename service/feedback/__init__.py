"""The query log and the thumbs up/down store (``store.FeedbackStore``, one SQLite file)."""
