"""Facts in and out as files: JSONL ingest and export."""
