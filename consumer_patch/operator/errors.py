"""Errors of the operator tools; all are ``AgentDLQError``, shown without a traceback.

::

    AgentDLQError
    └── OperatorError            the broker or the data did not allow the command
        ├── SelectionError       a filter or position could not be understood
        └── ReplayRefusedError   replay would write where it must not
"""

from __future__ import annotations

from consumer_patch.errors import AgentDLQError


class OperatorError(AgentDLQError):
    """An operator command could not do its work; the message says why."""


class SelectionError(OperatorError, ValueError):
    """An operator's filter or position could not be understood."""


class ReplayRefusedError(OperatorError):
    """Replay would write into the dead-letter topic, the ledger, a topic that
    is not allowed, or one that does not exist; nothing was sent."""
