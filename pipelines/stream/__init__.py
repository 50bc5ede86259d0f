"""The streaming pipeline: keyed detector state, windows, alerts, sources and sinks."""
