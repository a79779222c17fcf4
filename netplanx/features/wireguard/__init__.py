"""WireGuard between nodes: kernel WireGuard or wireguard-go."""
