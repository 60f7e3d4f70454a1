"""Tests of the operator tools (stats, list, show, replay, ack, watch, alerts)."""
