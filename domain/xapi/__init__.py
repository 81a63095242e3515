"""xAPI 2.0 statements: strict validation, comparison and the statement fact (pure)."""
