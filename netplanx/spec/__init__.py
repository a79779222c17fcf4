"""The spec: loading YAML with positions, the model that validates it, and compiling it to resources."""
