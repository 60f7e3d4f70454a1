"""Pulumi program for the dead-letter topic, its archive and its catalog."""
