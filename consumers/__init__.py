"""Kafka ingestion, dead letters, redrive and the outbound relay, against small ports."""
