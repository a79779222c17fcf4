"""The document layer: YAML with positions and limits, the shared field types, problems."""
