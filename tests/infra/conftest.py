"""Fixtures of the infrastructure tests: the program declared for each stack."""

from __future__ import annotations

import pytest

from tests.infra.mocking import STACKS, Deployment, deploy

_DEPLOYMENTS: dict[str, Deployment] = {}


@pytest.fixture(params=STACKS)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """What each stack declares (the program runs once per stack and session)."""
    stack = request.param
    if stack not in _DEPLOYMENTS:
        _DEPLOYMENTS[stack] = deploy(stack)
    return _DEPLOYMENTS[stack]
