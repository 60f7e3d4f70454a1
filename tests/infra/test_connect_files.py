"""The example configurations in connect/ are the shared function's output."""

from __future__ import annotations

import pytest

from infra.connect_files import CONNECT_DIRECTORY, example_configs, render


@pytest.mark.parametrize("name", sorted(example_configs()))
def test_example_file_matches_the_function(name: str) -> None:
    path = CONNECT_DIRECTORY / name

    assert path.is_file(), f"{name} is missing; run python -m infra.connect_files"
    assert path.read_text(encoding="utf-8") == render(example_configs()[name]), (
        f"connect/{name} differs from s3_sink_connector_config; "
        "run python -m infra.connect_files"
    )


def test_examples_hold_no_literal_secret() -> None:
    for name, config in example_configs().items():
        secret = config.get("aws.secret.access.key")
        assert secret is None or secret.startswith("${env:"), name
