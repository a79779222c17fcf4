"""Interfaces: links of every kind and their addresses."""
