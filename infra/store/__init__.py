"""The event store and the tables beside it: recorders with the fact-key index, parking and
dead letters, keys, certificates, read audit, relay position, the runner lease, one
reconnecting SQL connection, and the outage errors."""
