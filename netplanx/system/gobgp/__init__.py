"""gobgpd's gRPC API: the client (the stubs are generated at install time)."""
