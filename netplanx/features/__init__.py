"""Feature packages: each owns its spec model, checks, compile step, resource types, adoption,
doctor checks and show views; netplanx/registry.py lists them in order."""
