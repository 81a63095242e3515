"""The HTTP API: ingestion, queries, pages; given its services by infra/serve.py."""
