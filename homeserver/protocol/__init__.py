"""Pure Matrix algorithms: no I/O, no Twisted, no database, no clock.

Everything here takes plain data and returns plain data, so it can be tested
against the spec's vectors and reasoned about in isolation.
"""
