"""The C parts of netplanx: the fill of Maglev tables, the fast path of the YAML loader and the route read. Everything
else is declared in pyproject.toml.

``optional``: where no C compiler (or no Python headers, or no libyaml headers for the loader) is, pip still
installs netx, leaving out what it cannot build: maglev.py fills tables in Python (about 9 ms instead of 1 for
M = 65537; tests/test_maglev.py fails then), and loader.py composes every document with ruamel.yaml (about 3.5x
slower for a large spec; tests/test_loader_fast_path.py fails then), and routes.py decodes route dumps in Python
(about 17 ms instead of 5 for 10,000 routes; tests/test_route_dump.py fails then).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("netplanx.features.services._maglev_fill",
                             ["netplanx/features/services/_maglev_fill.c"], optional=True),
                   Extension("netplanx.document._fast_yaml", ["netplanx/document/_fast_yaml.c"],
                             libraries=["yaml"], optional=True),
                   Extension("netplanx.features.routing._route_dump", ["netplanx/features/routing/_route_dump.c"],
                             optional=True)])
