"""`studyledger bench`: ingest, views, HTTP and Kafka benchmarks beside same-run baselines."""


class BenchSetupError(RuntimeError):
    """What a benchmark needs could not be started (a broker, the projection runner):
    `studyledger bench` says so in one line instead of measuring nonsense."""
