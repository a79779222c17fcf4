"""Network policy: identities derived from the spec, and policies compiled into eBPF map entries."""
