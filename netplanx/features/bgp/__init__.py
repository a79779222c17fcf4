"""BGP through gobgpd's gRPC API, and the sync of learned routes into the kernel."""
