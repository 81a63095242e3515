"""`studyledger bench`: ingest, views, HTTP and Kafka benchmarks beside same-run baselines."""
