"""Operating the processes: Prometheus metrics, `doctor`, and test-only fault injection."""
