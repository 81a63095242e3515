"""The seeded demo district that `studyledger demo` and `run` load."""
