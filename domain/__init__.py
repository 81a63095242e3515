"""The learning archive's domain: facts, aggregates, policy packs, credit calculus. No I/O."""
