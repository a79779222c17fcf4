"""The features, in order: everything the core, the spec layer and the CLI do per feature loops over this.

A new feature is a package under ``netplanx/features/`` exporting ``FEATURE``, and one line here. The
order is the order of the spec's sections, of ``netx doctor``'s checks and of kinds of equal standing in
a plan; a feature may build on (import) the features before it, never on those after it.
"""

from __future__ import annotations

from netplanx.engine.feature import Feature
from netplanx.features.bgp.feature import FEATURE as BGP
from netplanx.features.cluster.feature import FEATURE as CLUSTER
from netplanx.features.interfaces.feature import FEATURE as INTERFACES
from netplanx.features.policy.feature import FEATURE as POLICY
from netplanx.features.routing.feature import FEATURE as ROUTING
from netplanx.features.services.feature import FEATURE as SERVICES
from netplanx.features.sysctls.feature import FEATURE as SYSCTLS
from netplanx.features.wireguard.feature import FEATURE as WIREGUARD

FEATURES: tuple[Feature, ...] = (
    INTERFACES,
    ROUTING,
    SYSCTLS,
    WIREGUARD,
    BGP,
    CLUSTER,
    SERVICES,
    POLICY,
)
