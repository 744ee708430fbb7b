"""The pure core: commands, history, interpreter, codec, errors and definitions.

Nothing in this package performs I/O, reads a clock, draws random numbers or starts threads; a test
walks its syntax trees to keep it that way (tests/core/test_purity.py).
"""
