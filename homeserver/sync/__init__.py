"""/sync: built from the stream sources between two tokens."""
