"""Streams: positions, sync tokens, ID generators, the notifier.

See streams/README.md for the design note.
"""
