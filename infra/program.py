"""The whole stack as a function of its configuration."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kafka as kafka

from .archive import DeadLetterArchive
from .archive_connector import ArchiveConnector
from .catalog import ArchiveCatalog
from .config import Environment, StackConfig
from .kafka import DeadLetterAcls, DeadLetterTopic, ReplayLedgerTopic, acl_grants


@dataclass(frozen=True)
class Program:
    """The components one stack declares."""

    topic: DeadLetterTopic
    acls: DeadLetterAcls | None
    archive: DeadLetterArchive
    catalog: ArchiveCatalog
    connector: ArchiveConnector


def build_program(config: StackConfig) -> Program:
    """Declare every resource of one stack and export its outputs."""
    kafka_provider = kafka.Provider(
        "kafka",
        bootstrap_servers=list(config.kafka.bootstrap_servers),
        tls_enabled=config.kafka.tls_enabled,
        sasl_mechanism=config.kafka.sasl_mechanism,
        sasl_username=config.kafka.sasl_username,
        sasl_password=config.kafka.sasl_password,
    )
    aws_provider = aws.Provider(
        "aws",
        region=config.aws_region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=config.tags),
    )
    on_kafka = pulumi.ResourceOptions(provider=kafka_provider)
    on_aws = pulumi.ResourceOptions(providers=[aws_provider])
    layout = config.archive.layout

    topic = DeadLetterTopic(
        "dead-letter-topic",
        config.kafka,
        protect=config.environment is Environment.PROD,
        opts=on_kafka,
    )
    ledger = ReplayLedgerTopic(
        "replay-ledger-topic", config.kafka, layout.topic, opts=on_kafka
    )
    acls = None
    if config.kafka.manage_acls:
        grants = acl_grants(config.kafka, config.connector.name, layout.topic)
        acls = DeadLetterAcls("dead-letter-acls", grants, opts=on_kafka)

    archive = DeadLetterArchive(
        "archive", config.archive, config.environment, opts=on_aws
    )
    catalog = ArchiveCatalog(
        "archive-catalog",
        config.archive,
        archive_bucket=archive.archive.bucket.bucket,
        results_bucket=archive.results.bucket.bucket,
        kms_key_arn=archive.key.arn,
        opts=on_aws,
    )
    connector = ArchiveConnector(
        "archive-connector",
        config.connector,
        bucket_name=archive.archive.bucket.bucket,
        region=config.aws_region,
        layout=layout,
        # The connector must not start before the topic it reads exists.
        opts=pulumi.ResourceOptions(providers=[aws_provider], depends_on=[topic]),
    )

    pulumi.export("deadLetterTopic", topic.topic.name)
    pulumi.export("replayLedgerTopic", ledger.topic.name)
    pulumi.export("archiveBucket", archive.archive.bucket.bucket)
    pulumi.export("archiveLocation", catalog.table.storage_descriptor.location)
    pulumi.export("athenaResultsBucket", archive.results.bucket.bucket)
    pulumi.export("archiveWriterPolicyArn", archive.writer_policy.arn)
    pulumi.export("glueDatabase", catalog.database.name)
    pulumi.export("glueTable", catalog.table.name)
    pulumi.export("athenaWorkgroup", catalog.workgroup.name)
    pulumi.export("connectorName", config.connector.name)
    pulumi.export("connectorConfig", pulumi.Output.secret(connector.connector_config))

    return Program(topic, acls, archive, catalog, connector)
