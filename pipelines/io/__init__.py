"""Reading, validating and writing exchanges and tables; the run's work files."""
