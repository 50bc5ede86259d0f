"""The batch pipeline: its composite transforms and entry point."""
