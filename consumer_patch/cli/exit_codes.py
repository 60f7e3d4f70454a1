"""Exit statuses of the operator commands (``main`` uses 1 for errors, 2 for usage)."""

EXIT_THRESHOLD = 3
EXIT_INTERRUPTED = 130
