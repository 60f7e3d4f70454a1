"""Stack configuration is validated up front, and switches what is declared."""

from __future__ import annotations

from typing import Any

import pytest

from consumer_patch.connector import s3_sink_connector_config
from infra.config import ConfigError
from tests.infra.mocking import deploy

MSK_CONNECT = {
    "agent-dlq:connectorDeployment": "msk-connect",
    "agent-dlq:mskConnectCustomPluginArn": (
        "arn:aws:kafkaconnect:eu-west-1:123456789012:custom-plugin/s3-sink/1"
    ),
    "agent-dlq:mskConnectCustomPluginRevision": 1,
    "agent-dlq:mskConnectServiceExecutionRoleArn": (
        "arn:aws:iam::123456789012:role/agent-dlq-connect"
    ),
    "agent-dlq:mskConnectBootstrapServers": "b-1.msk.internal:9098",
    "agent-dlq:mskConnectSubnets": ["subnet-a", "subnet-b"],
    "agent-dlq:mskConnectSecurityGroups": ["sg-connect"],
    "agent-dlq:mskConnectKafkaconnectVersion": "3.7.x",
    "agent-dlq:mskConnectWorkerCount": 2,
}


def test_msk_connect_deployment_declares_an_msk_connector() -> None:
    deployment = deploy("prod", MSK_CONNECT)
    connector = deployment.one("aws:mskconnect/connector:Connector")
    inputs: dict[str, Any] = dict(connector.inputs)
    expected = s3_sink_connector_config(
        "confluent",
        bucket="agent-dlq-archive-prod",
        region="eu-west-1",
        tasks_max=3,
    )
    del expected["name"]

    assert not deployment.of_type("pulumi-python:dynamic:Resource"), (
        "an MSK Connect stack must not also upsert through a Connect REST API"
    )
    assert inputs["name"] == "agent-actions-dlq-s3-sink", connector.name
    assert inputs["connectorConfiguration"] == expected, (
        f"connector {connector.name} configuration differs from the shared function"
    )
    assert inputs["kafkaconnectVersion"] == "3.7.x"
    assert inputs["capacity"]["provisionedCapacity"]["workerCount"] == 2
    cluster = inputs["kafkaCluster"]["apacheKafkaCluster"]
    assert cluster["bootstrapServers"] == "b-1.msk.internal:9098"
    assert cluster["vpc"]["subnets"] == ["subnet-a", "subnet-b"]
    assert inputs["kafkaClusterClientAuthentication"]["authenticationType"] == "IAM"
    assert inputs["kafkaClusterEncryptionInTransit"]["encryptionType"] == "TLS"
    assert inputs["plugins"][0]["customPlugin"]["revision"] == 1


def test_static_connector_credentials_keep_the_configuration_secret() -> None:
    deployment = deploy(
        "dev",
        {
            "agent-dlq:connectorAwsAccessKeyId": "AKIAEXAMPLE",
            "agent-dlq:connectorAwsSecretAccessKey": "secret-for-tests",
        },
    )
    connector = deployment.one("pulumi-python:dynamic:Resource")

    assert "4dabf18193072939515e22adb298388d" in connector.inputs["config"], (
        f"connector {connector.name} configuration holds a key but is not secret"
    )


def test_without_acl_management_no_acl_is_declared() -> None:
    deployment = deploy("dev", {"agent-dlq:manageAcls": False})

    assert deployment.of_type("kafka:index/acl:Acl") == []
    assert deployment.one("kafka:index/topic:Topic", "agent-actions-dlq")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"agent-dlq:dlqMinInsyncReplicas": 2}, "agent-dlq:dlqMinInsyncReplicas"),
        ({"agent-dlq:dlqReplicationFactor": 0}, "agent-dlq:dlqReplicationFactor"),
        ({"agent-dlq:environment": "qa"}, "agent-dlq:environment"),
        ({"agent-dlq:connectorFlavor": "camel"}, "agent-dlq:connectorFlavor"),
        ({"agent-dlq:archiveTransitionDays": 10}, "agent-dlq:archiveTransitionDays"),
        ({"agent-dlq:archiveExpirationDays": 30}, "agent-dlq:archiveExpirationDays"),
        ({"agent-dlq:archivePrefix": "/dead-letters/"}, "agent-dlq:archivePrefix"),
        ({"agent-dlq:consumerPrincipal": "User:*"}, "agent-dlq:consumerPrincipal"),
        ({"agent-dlq:connectUrl": "connect:8083"}, "agent-dlq:connectUrl"),
        ({"agent-dlq:kafkaSaslMechanism": "gssapi"}, "agent-dlq:kafkaSaslMechanism"),
        (
            {"agent-dlq:connectorDeployment": "msk-connect"},
            "agent-dlq:mskConnectCustomPluginArn",
        ),
        (
            {**MSK_CONNECT, "agent-dlq:mskConnectAuthenticationType": "SASL"},
            "agent-dlq:mskConnectAuthenticationType",
        ),
        (
            {"agent-dlq:connectorAwsAccessKeyId": "AKIAEXAMPLE"},
            "agent-dlq:connectorAwsSecretAccessKey",
        ),
    ],
)
def test_invalid_configuration_names_the_key(
    overrides: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        deploy("dev", overrides)
