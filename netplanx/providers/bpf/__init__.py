"""eBPF datapath provider: services load balancing and policies."""
