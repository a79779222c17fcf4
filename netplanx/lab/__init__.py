"""A lab of namespaces on this machine: nodes on an underlay, BGP peers (tests and demos)."""
