"""Renderers only format: plans and live state as text for people, and a console that colours only on a
terminal."""
