"""The ``netx`` command line."""
