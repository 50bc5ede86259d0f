"""The persisted index of day-over-day batch runs: stable ids, history, explain."""
