"""Network policy in eBPF, with flow visibility."""
