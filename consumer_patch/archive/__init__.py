"""The dead-letter archive: S3 objects written by the sink, read with DuckDB."""
