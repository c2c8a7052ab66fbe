"""Retrieval and answering service: reads the index that ``ingest`` writes."""
