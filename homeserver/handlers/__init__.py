"""Handlers: the logic of one spec area each. No SQL, no HTTP objects."""
