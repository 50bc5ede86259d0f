"""Runner choice, Beam options and process-level tuning."""
