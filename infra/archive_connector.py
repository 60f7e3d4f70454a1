"""The S3 sink that copies the DLQ into the archive bucket.

Its configuration comes from :func:`consumer_patch.connector.s3_sink_connector_config`,
the function the local stack uses too, with the same archive layout as the
Glue table.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from consumer_patch.connector import ArchiveLayout, s3_sink_connector_config

from .config import ConnectorDeployment, ConnectorSettings, MskConnectSettings
from .connect_rest import KafkaConnectConnector


class ArchiveConnector(pulumi.ComponentResource):
    """The connector, on a Connect cluster's REST API or on MSK Connect."""

    connector_config: pulumi.Output[dict[str, str]]
    connector: KafkaConnectConnector | aws.mskconnect.Connector

    def __init__(
        self,
        name: str,
        settings: ConnectorSettings,
        bucket_name: pulumi.Output[str],
        region: str,
        layout: ArchiveLayout,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-dlq:connect:ArchiveConnector", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def build(bucket: str, secret_access_key: str | None) -> dict[str, str]:
            return s3_sink_connector_config(
                settings.flavor,
                bucket=bucket,
                region=region,
                access_key_id=settings.aws_access_key_id,
                secret_access_key=secret_access_key,
                layout=layout,
                name=settings.name,
                tasks_max=settings.tasks_max,
            )

        # A secret key makes the whole configuration a secret output.
        self.connector_config = pulumi.Output.all(
            bucket_name, settings.aws_secret_access_key
        ).apply(lambda values: build(values[0], values[1]))

        if settings.deployment is ConnectorDeployment.CONNECT_REST:
            if settings.connect_url is None:
                raise ValueError("a connect-rest deployment needs connectUrl")
            self.connector = KafkaConnectConnector(
                f"{name}-rest",
                connect_url=settings.connect_url,
                connector_name=settings.name,
                config=self.connector_config,
                username=settings.connect_username,
                password=settings.connect_password,
                opts=child,
            )
        else:
            if settings.msk is None:
                raise ValueError("an msk-connect deployment needs its mskConnect* keys")
            self.connector = _msk_connector(
                f"{name}-msk", settings.name, settings.msk, self.connector_config, child
            )

        self.register_outputs({"connectorName": settings.name})


def _msk_connector(
    resource_name: str,
    connector_name: str,
    msk: MskConnectSettings,
    config: pulumi.Output[dict[str, str]],
    opts: pulumi.ResourceOptions,
) -> aws.mskconnect.Connector:
    # MSK Connect names the connector itself; the rest is the same map.
    configuration = config.apply(
        lambda values: {key: value for key, value in values.items() if key != "name"}
    )
    return aws.mskconnect.Connector(
        resource_name,
        name=connector_name,
        kafkaconnect_version=msk.kafkaconnect_version,
        connector_configuration=configuration,
        capacity=aws.mskconnect.ConnectorCapacityArgs(
            provisioned_capacity=aws.mskconnect.ConnectorCapacityProvisionedCapacityArgs(
                worker_count=msk.worker_count, mcu_count=msk.mcu_count
            )
        ),
        kafka_cluster=aws.mskconnect.ConnectorKafkaClusterArgs(
            apache_kafka_cluster=aws.mskconnect.ConnectorKafkaClusterApacheKafkaClusterArgs(
                bootstrap_servers=msk.bootstrap_servers,
                vpc=aws.mskconnect.ConnectorKafkaClusterApacheKafkaClusterVpcArgs(
                    subnets=list(msk.subnets),
                    security_groups=list(msk.security_groups),
                ),
            )
        ),
        kafka_cluster_client_authentication=aws.mskconnect.ConnectorKafkaClusterClientAuthenticationArgs(
            authentication_type=msk.authentication_type.value
        ),
        kafka_cluster_encryption_in_transit=aws.mskconnect.ConnectorKafkaClusterEncryptionInTransitArgs(
            encryption_type="TLS"
        ),
        plugins=[
            aws.mskconnect.ConnectorPluginArgs(
                custom_plugin=aws.mskconnect.ConnectorPluginCustomPluginArgs(
                    arn=msk.custom_plugin_arn, revision=msk.custom_plugin_revision
                )
            )
        ],
        service_execution_role_arn=msk.service_execution_role_arn,
        opts=opts,
    )
