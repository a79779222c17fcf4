"""The generic engine: resources, the feature API, planner, applier, verification; it knows no feature."""
