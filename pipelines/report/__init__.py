"""What analysts read: the HTML report and the terminal summary."""
