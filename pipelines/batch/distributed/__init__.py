"""The keyed batch path: stages whose elements stay bounded as the logs grow."""
