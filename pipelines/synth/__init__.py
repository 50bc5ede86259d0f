"""The synthetic log generator, with ground truth."""
