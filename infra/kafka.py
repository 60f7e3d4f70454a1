"""The dead-letter topic and the ACLs of everyone who touches it.

The design uses no separate retry topic: transient failures are retried in
place by the consumer, and the redrive worker sends transient dead letters
back to the source topic. So two topics are declared here: the DLQ and the
replay ledger that makes replay idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kafka as kafka

from consumer_patch.connector import DEAD_LETTER_TOPIC, connect_group_id
from consumer_patch.topics import (
    DLQ_PARTITIONS,
    REPLAY_LEDGER_PARTITIONS,
    REPLAY_TRANSACTIONAL_ID_PREFIX,
    dead_letter_topic_configs,
    replay_ledger_name,
    replay_ledger_topic_configs,
)

from .config import KafkaSettings

DEAD_LETTER_PARTITIONS = DLQ_PARTITIONS

# Kafka names the cluster resource of an ACL this way, whatever the cluster.
CLUSTER_RESOURCE_NAME = "kafka-cluster"


def dead_letter_topic_config(min_insync_replicas: int) -> dict[str, str]:
    """Topic-level settings of the DLQ: the package's one declaration, which the
    local stack and the tests apply to a real broker too."""
    return dead_letter_topic_configs(min_insync_replicas)


@dataclass(frozen=True)
class AclGrant:
    """One ``Allow`` ACL: who may do what on which resource."""

    role: str
    principal: str
    operation: str
    resource_type: str
    resource_name: str
    pattern_type: str = "Literal"

    @property
    def resource_label(self) -> str:
        """Stable Pulumi name of the ACL resource."""
        parts = (self.role, self.operation, self.resource_type, self.resource_name)
        label = "-".join(parts).lower()
        if self.pattern_type == "Prefixed":
            label += "-prefixed"
        return re.sub(r"[^a-z0-9-]+", "-", label)


def acl_grants(
    settings: KafkaSettings, connector_name: str, dead_letter_topic: str
) -> list[AclGrant]:
    """Least-privilege ACLs of the consumer, operators, redrive and connector."""
    source = settings.source_topic

    def grant(
        role: str, principal: str, operation: str, kind: str, name: str
    ) -> AclGrant:
        return AclGrant(role, principal, operation, kind, name)

    consumer = settings.consumer_principal
    grants = [
        grant("consumer", consumer, "Read", "Topic", source),
        grant("consumer", consumer, "Read", "Group", settings.consumer_group),
        grant("consumer", consumer, "Write", "Topic", dead_letter_topic),
        grant("consumer", consumer, "Describe", "Topic", dead_letter_topic),
        grant(
            "consumer", consumer, "IdempotentWrite", "Cluster", CLUSTER_RESOURCE_NAME
        ),
    ]
    if settings.transactional_id_prefix is not None:
        # Dead-letter write and offset commit in one transaction.
        grants += _transactional_ids(
            "consumer", consumer, settings.transactional_id_prefix
        )

    operator = settings.operator_principal
    ledger = replay_ledger_name(dead_letter_topic)
    grants += [
        grant("operator", operator, "Read", "Topic", dead_letter_topic),
        grant("operator", operator, "Describe", "Topic", dead_letter_topic),
        grant("operator", operator, "Read", "Group", settings.triage_group),
        # Replay: the originals go back to the source topic, and each one is
        # recorded in the ledger in the same transaction.
        grant("operator", operator, "Write", "Topic", source),
        grant("operator", operator, "Describe", "Topic", source),
        grant("operator", operator, "Read", "Topic", ledger),
        grant("operator", operator, "Write", "Topic", ledger),
        grant("operator", operator, "Describe", "Topic", ledger),
        grant(
            "operator", operator, "IdempotentWrite", "Cluster", CLUSTER_RESOURCE_NAME
        ),
    ]
    grants += _transactional_ids("operator", operator, REPLAY_TRANSACTIONAL_ID_PREFIX)

    redrive = settings.redrive_principal
    grants += [
        grant("redrive", redrive, "Read", "Topic", dead_letter_topic),
        grant("redrive", redrive, "Describe", "Topic", dead_letter_topic),
        grant("redrive", redrive, "Read", "Group", settings.redrive_group),
        grant("redrive", redrive, "Write", "Topic", source),
        grant("redrive", redrive, "Describe", "Topic", source),
        grant("redrive", redrive, "IdempotentWrite", "Cluster", CLUSTER_RESOURCE_NAME),
    ]
    # Redriven records and the worker's progress share one transaction.
    grants += _transactional_ids("redrive", redrive, f"{settings.redrive_group}-")

    connector = settings.connector_principal
    grants += [
        grant("connector", connector, "Read", "Topic", dead_letter_topic),
        grant("connector", connector, "Describe", "Topic", dead_letter_topic),
        grant(
            "connector", connector, "Read", "Group", connect_group_id(connector_name)
        ),
    ]
    return grants


def _transactional_ids(role: str, principal: str, prefix: str) -> list[AclGrant]:
    return [
        AclGrant(role, principal, operation, "TransactionalID", prefix, "Prefixed")
        for operation in ("Write", "Describe")
    ]


class ReplayLedgerTopic(pulumi.ComponentResource):
    """The compacted topic replay records its sends in, so a replay runs once."""

    topic: kafka.Topic

    def __init__(
        self,
        name: str,
        settings: KafkaSettings,
        dead_letter_topic: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-dlq:kafka:ReplayLedgerTopic", name, None, opts)

        ledger = replay_ledger_name(dead_letter_topic)
        self.topic = kafka.Topic(
            ledger,
            name=ledger,
            partitions=REPLAY_LEDGER_PARTITIONS,
            replication_factor=settings.replication_factor,
            config=replay_ledger_topic_configs(settings.min_insync_replicas),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.register_outputs({"topicName": self.topic.name})


class DeadLetterTopic(pulumi.ComponentResource):
    """The ``agent-actions-dlq`` topic with its durability settings."""

    topic: kafka.Topic

    def __init__(
        self,
        name: str,
        settings: KafkaSettings,
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-dlq:kafka:DeadLetterTopic", name, None, opts)

        self.topic = kafka.Topic(
            DEAD_LETTER_TOPIC,
            name=DEAD_LETTER_TOPIC,
            partitions=DEAD_LETTER_PARTITIONS,
            replication_factor=settings.replication_factor,
            config=dead_letter_topic_config(settings.min_insync_replicas),
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )

        self.register_outputs({"topicName": self.topic.name})


class DeadLetterAcls(pulumi.ComponentResource):
    """One ``kafka.Acl`` per :class:`AclGrant`."""

    acls: dict[str, kafka.Acl]

    def __init__(
        self,
        name: str,
        grants: list[AclGrant],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-dlq:kafka:DeadLetterAcls", name, None, opts)

        self.acls = {}
        for grant in grants:
            self.acls[grant.resource_label] = kafka.Acl(
                grant.resource_label,
                acl_principal=grant.principal,
                acl_host="*",
                acl_operation=grant.operation,
                acl_permission_type="Allow",
                acl_resource_type=grant.resource_type,
                acl_resource_name=grant.resource_name,
                resource_pattern_type_filter=grant.pattern_type,
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.register_outputs({"aclCount": len(self.acls)})
