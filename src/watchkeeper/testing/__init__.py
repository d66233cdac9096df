"""Public test helpers: in-memory storage, a manual clock, hypothesis strategies."""
