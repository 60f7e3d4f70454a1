"""The ``agent-dlq`` command line."""
