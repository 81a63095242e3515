"""The `studyledger` command line: `main` builds the parser from each command group's module."""
