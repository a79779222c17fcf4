"""``python -m netplanx.lab up|down``: build or remove a lab of namespaces."""

from netplanx.lab.cluster import main

raise SystemExit(main())
