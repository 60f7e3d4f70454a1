"""Operator tools: read, count, replay and watch the dead-letter topic.

The command line (``agent-dlq stats | list | show | replay | ack | watch``)
is a thin layer over these modules:

- ``selection``: filters, time windows and positions, parsed and matched;
- ``reader``: bounded, read_committed reads of the dead-letter topic;
- ``stats`` and ``triage``: counts, rate and depth; marking dead letters
  handled by moving the triage group's offsets;
- ``replay``: transactional, ledger-backed, rate-limited replay;
- ``watch``: the long-running monitor, Prometheus exporter and webhook.
"""
