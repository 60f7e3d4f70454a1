"""``agent-dlq stack up | down | status``: the local services and the archive sink."""

from __future__ import annotations

import argparse
import sys

from consumer_patch.archive.connect import ConnectorState
from consumer_patch.cli.output import emit_json, table
from consumer_patch.stack import LocalStack, ServiceStatus

STATUS_COLUMNS = ("service", "state", "pid", "detail")
CONNECTOR_COLUMNS = ("connector", "state", "tasks", "worker")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stack",
        help="start, stop or inspect the local Kafka, PostgreSQL, S3 and Connect",
        description="Manage the local stack kept under .stack/ "
        "(AGENT_DLQ_STACK_DIR overrides the folder).",
    )
    actions = parser.add_subparsers(dest="stack_action", required=True)
    for name, help_text in (
        ("up", "start every service that is not running and print the settings"),
        ("down", "stop the services this stack started"),
        (
            "status",
            "tell per service whether it runs, and each connector's state "
            "(exit 3 when a service or connector does not run)",
        ),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    stack = LocalStack()
    if arguments.stack_action == "up":
        print("starting the local stack (first run downloads jars)...", file=sys.stderr)
        environment = stack.up()
        if arguments.json:
            emit_json({"env": environment, "services": _rows(stack.status())})
        else:
            _print_status(stack.status())
            print(f"\nsettings written to {stack.paths.env_file}:")
            for name, value in environment.items():
                print(f"{name}={value}")
        return 0
    if arguments.stack_action == "down":
        before = stack.down()
        if arguments.json:
            emit_json({"stopped": _rows(before)})
        else:
            for status in before:
                verb = "stopped" if status.state == "running" else f"was {status.state}"
                print(f"{status.name}: {verb}")
        return 0

    statuses = stack.status()
    connectors = stack.connect.connector_states()
    if arguments.json:
        emit_json({"services": _rows(statuses), "connectors": _connectors(connectors)})
    else:
        _print_status(statuses)
        if connectors:
            print()
            table(_connectors(connectors), CONNECTOR_COLUMNS)
    healthy = all(status.is_up for status in statuses) and all(
        connector.is_running for connector in connectors
    )
    return 0 if healthy else 3


def _rows(statuses: list[ServiceStatus]) -> list[dict[str, object]]:
    return [
        {"service": s.name, "state": s.state, "pid": s.pid, "detail": s.detail}
        for s in statuses
    ]


def _connectors(states: list[ConnectorState]) -> list[dict[str, object]]:
    return [
        {
            "connector": state.name,
            "state": state.state,
            "tasks": ", ".join(f"{task.id}:{task.state}" for task in state.tasks),
            "worker": state.worker,
        }
        for state in states
    ]


def _print_status(statuses: list[ServiceStatus]) -> None:
    table(_rows(statuses), STATUS_COLUMNS)
