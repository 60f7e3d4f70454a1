"""Lossless dead-letter handling for the agent-actions Kafka consumer."""
