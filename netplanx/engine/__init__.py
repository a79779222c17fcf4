"""The generic engine: resources, planner, applier, lock and state; it knows no resource kind."""
