"""Kafka ingestion, dead letters and the outbound relay (issue 5)."""
