"""A cluster: nodes, their underlay, tunnel or native routing, and endpoints."""
