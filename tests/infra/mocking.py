"""Run the Pulumi program under Pulumi's mocks with a stack file's configuration.

The stacks' real ``Pulumi.<stack>.yaml`` files are the configuration, plus
test values for the secrets a real stack keeps encrypted. Every resource
the program registers is recorded with its inputs (camelCase keys, as the
engine receives them) so tests assert on exactly what ``pulumi up`` would
send.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws
import yaml

from infra.config import PROJECT, load_config
from infra.policy import ResourceRecord
from infra.program import Program, build_program

# pulumi_aws warns about its own deprecated V2 aliases when its (lazily
# imported) s3 module loads; the program uses none of them.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    pulumi_aws.s3.Bucket  # noqa: B018

REPOSITORY = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")

# What `pulumi config set --secret` would hold on a real stack.
TEST_SECRETS = {
    f"{PROJECT}:kafkaSaslPassword": "kafka-password-for-tests",
    f"{PROJECT}:connectPassword": "connect-password-for-tests",
}


def stack_file_values(stack: str) -> dict[str, Any]:
    """The ``config:`` block of ``Pulumi.<stack>.yaml`` as written."""
    document = yaml.safe_load((REPOSITORY / f"Pulumi.{stack}.yaml").read_text())
    return dict(document["config"])


def _as_config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that answer like AWS and Kafka would and record every resource."""

    def __init__(self) -> None:
        self.records: list[ResourceRecord] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        resource_id = self._physical_id(args.typ, args.name, inputs)
        self.records.append(ResourceRecord(args.typ, args.name, resource_id, inputs))
        return resource_id, {**inputs, **self._computed(args.typ, args.name, inputs)}

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    @staticmethod
    def _physical_id(type_token: str, name: str, inputs: Mapping[str, Any]) -> str:
        if type_token == "aws:s3/bucket:Bucket":
            return str(inputs["bucket"])
        return f"{name}-id"

    @staticmethod
    def _computed(
        type_token: str, name: str, inputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        if type_token == "aws:s3/bucket:Bucket":
            return {"arn": f"arn:aws:s3:::{inputs['bucket']}"}
        if type_token == "aws:kms/key:Key":
            return {
                "arn": f"arn:aws:kms:eu-west-1:123456789012:key/{name}",
                "keyId": f"{name}-key-id",
            }
        if type_token == "aws:iam/policy:Policy":
            return {"arn": f"arn:aws:iam::123456789012:policy/{name}"}
        return {}


@dataclass
class Deployment:
    """What one stack declared under the mocks."""

    stack: str
    values: dict[str, Any]
    records: list[ResourceRecord]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[ResourceRecord]:
        return [record for record in self.records if record.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> ResourceRecord:
        matches = [
            record
            for record in self.of_type(type_token)
            if name is None or record.name == name
        ]
        assert len(matches) == 1, (
            f"{self.stack}: expected one {type_token}"
            + (f" named {name}" if name else "")
            + f", found {[record.name for record in matches]}"
        )
        return matches[0]

    def attached(self, type_token: str, bucket: ResourceRecord) -> ResourceRecord:
        matches = [
            record
            for record in self.of_type(type_token)
            if record.inputs.get("bucket") == bucket.resource_id
        ]
        assert len(matches) == 1, (
            f"{self.stack}: bucket {bucket.name} should have one {type_token}, "
            f"found {len(matches)}"
        )
        return matches[0]


def configure(
    stack: str, mocks: RecordingMocks, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Point the Pulumi runtime at ``mocks`` and the stack's configuration."""
    values = stack_file_values(stack) | dict(overrides or {})
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    config = {key: _as_config_string(value) for key, value in values.items()}
    config |= TEST_SECRETS
    pulumi.runtime.set_all_config(config, secret_keys=list(TEST_SECRETS))
    return values


def deploy(stack: str, overrides: Mapping[str, Any] | None = None) -> Deployment:
    """Run the whole program for ``stack`` and wait for every registration."""
    mocks = RecordingMocks()
    deployment = Deployment(stack, {}, mocks.records)

    @pulumi.runtime.test
    def run() -> pulumi.Output[None]:
        deployment.values = configure(stack, mocks, overrides)
        program = build_program(load_config())
        return _capture_outputs(program, deployment.outputs.update)

    run()
    return deployment


def _capture_outputs(
    program: Program, store: Callable[[dict[str, Any]], None]
) -> pulumi.Output[None]:
    return pulumi.Output.all(
        connector_config=program.connector.connector_config,
        table_location=program.catalog.table.storage_descriptor.location,
        table_parameters=program.catalog.table.parameters,
    ).apply(store)
