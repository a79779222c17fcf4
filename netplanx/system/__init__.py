"""Low-level helpers below every feature: netlink, namespaces, BPF, gobgpd's API, daemons, records."""
