"""The campaign model, free of Beam: shared by the batch and streaming paths."""
