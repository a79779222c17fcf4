"""Network sysctls of a namespace."""
