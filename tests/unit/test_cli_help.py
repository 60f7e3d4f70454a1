"""Every subcommand answers --help with its usage (an unknown one exits 2)."""

from __future__ import annotations

import pytest

from consumer_patch.cli.main import main

# The design's commands first, then the ones the operator tools added.
SUBCOMMANDS = [
    "consume",
    "stats",
    "list",
    "show",
    "replay",
    "watch",
    "redrive",
    "stack",
    "demo",
    "ack",
    "archive",
    "topics",
]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help_prints_its_usage(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    printed = capsys.readouterr().out
    assert exited.value.code == 0
    assert printed.startswith(f"usage: agent-dlq {command}")


def test_unknown_subcommand_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])

    assert exited.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
