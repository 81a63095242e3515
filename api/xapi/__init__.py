"""The xAPI 2.0 Learning Record Store under /xapi (statements, about)."""
