"""Renderers only format: plans and live state as text for people, JSON for machines, YAML specs."""
