"""Ingestion: turn the articles in ``corpus/`` into cited-ready chunks in a Chroma index.

This package owns the index format; the service only reads it (see ``ingest.store``).
"""
