"""Compiling, loading, pinning and attaching eBPF programs, and pinned maps."""
