"""Myelin homeserver: the core (accounts, rooms, events, sync, …). See DESIGN.md."""
