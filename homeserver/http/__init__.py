"""HTTP edge: twisted.web site, router, body parsing, token auth, JSON and errors.

Imports errors, config, util and protocol; never handlers or storage (the
token lookup is passed in as a function).
"""
