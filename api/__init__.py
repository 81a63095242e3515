"""The HTTP API: ingestion, queries, pages, the xAPI LRS; built by infra/bootstrap.py."""
