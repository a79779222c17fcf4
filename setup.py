"""The C part of netplanx: the fill of Maglev tables. Everything else is declared in pyproject.toml.

``optional``: where no C compiler (or no Python headers) is, pip still installs netx, without the extension,
and maglev.py fills tables in Python (about 9 ms instead of 1 for M = 65537; tests/test_maglev.py fails then).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("netplanx.features.services._maglev_fill",
                             ["netplanx/features/services/_maglev_fill.c"], optional=True)])
