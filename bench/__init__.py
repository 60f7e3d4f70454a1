"""Benchmarks: what the dead-letter machinery costs, measured side by side.

``python -m bench`` (or ``make bench``) prepares its own topics and data on
the local stack, runs each comparison's two sides alternately for several
rounds, and prints a table of rates, ratios and peak memory with the target
of each ratio. Raw results go to a JSON file and a plot to a PNG; see
``docs/benchmarks.md``.
"""
