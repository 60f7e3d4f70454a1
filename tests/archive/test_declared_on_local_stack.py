"""What the dev stack declares is accepted by the real broker and Connect worker.

Pulumi's mocks prove what the program declares; here Kafka and Kafka Connect
themselves judge it. The declared dead-letter topic is created on the local
broker and read back through DescribeConfigs, and the declared connector
configuration (the bundled flavor, which is the plugin this worker has) goes
through ``PUT /connector-plugins/{class}/config/validate``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from consumer_patch.archive.connect import ConnectClient
from consumer_patch.connector import BUNDLED_CONNECTOR_CLASS, ArchiveLayout
from consumer_patch.stack.connect import local_connector_config
from consumer_patch.topics import (
    TopicSpec,
    describe_topic_configs,
    ensure_topics,
    partitions_of,
)
from tests.conftest import ArchiveServices, Services
from tests.infra.mocking import Deployment, deploy

TOPIC = "kafka:index/topic:Topic"


@pytest.fixture(scope="module")
def dev_with_bundled_connector() -> Deployment:
    return deploy("dev", {"agent-dlq:connectorFlavor": "bundled"})


@pytest.mark.parametrize(
    "declared_name", ["agent-actions-dlq", "agent-actions-dlq-replay-ledger"]
)
async def test_declared_topic_reads_back_identical(
    services: Services,
    unique: Callable[[str], str],
    dev_with_bundled_connector: Deployment,
    declared_name: str,
) -> None:
    declared = dev_with_bundled_connector.one(TOPIC, declared_name)
    inputs = declared.inputs
    # Same settings under a name of this test's own.
    name = unique("declared")
    spec = TopicSpec(
        name,
        int(inputs["partitions"]),
        int(inputs["replicationFactor"]),
        dict(inputs["config"]),
    )
    options: dict[str, object] = {"bootstrap_servers": services.bootstrap_servers}

    created = await ensure_topics(options, [spec])
    configs = await describe_topic_configs(options, name)
    partitions = await partitions_of(options, name)

    assert created == [name]
    assert {key: configs.get(key) for key in spec.configs} == spec.configs
    assert partitions == list(range(spec.partitions))


async def test_declared_connector_configuration_passes_connect_validation(
    archive_services: ArchiveServices, dev_with_bundled_connector: Deployment
) -> None:
    declared: dict[str, str] = dev_with_bundled_connector.outputs["connector_config"]
    client = ConnectClient(archive_services.connect_url)

    problems = await asyncio.to_thread(
        client.validate, declared["connector.class"], declared
    )

    assert declared["connector.class"] == BUNDLED_CONNECTOR_CLASS
    assert problems == []


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"s3.bucket.name": ""}, "s3.bucket.name"),
        ({"archive.prefix": "/dead-letters/"}, "archive.prefix"),
        ({"s3.endpoint.url": "not a url"}, "s3.endpoint.url"),
        ({"errors.tolerance": "sometimes"}, "errors.tolerance"),
        ({"aws.secret.access.key": ""}, "aws.access.key.id"),
    ],
)
async def test_connect_validation_names_the_wrong_setting(
    archive_services: ArchiveServices, change: dict[str, Any], key: str
) -> None:
    config = local_connector_config(
        archive_services.s3_environment, ArchiveLayout(), "validation-only"
    )
    client = ConnectClient(archive_services.connect_url)

    problems = await asyncio.to_thread(
        client.validate, BUNDLED_CONNECTOR_CLASS, config | change
    )

    assert key in {problem.key for problem in problems}, problems
