"""The BGP provider: GoBGP (gobgpd) driven over its gRPC API, with stubs generated at install time."""
