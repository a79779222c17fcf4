"""Routing: routes, policy rules and permanent neighbours."""
