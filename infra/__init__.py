"""Infrastructure: settings, persistence, the composition root and the CLI."""
