"""Services on an eBPF load balancer with Maglev hashing."""
