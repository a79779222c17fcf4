"""Providers read live resources and carry out create/update/delete; they never plan."""
