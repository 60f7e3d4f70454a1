"""Stack configuration, read in one place and validated before anything is built.

Every key lives in the project namespace (``agent-dlq:<key>``) except the AWS
region, which is the AWS provider's own ``aws:region``. ``docs/infra.md``
lists the keys; :func:`load_config` is the only code that reads them.
Secrets (``kafkaSaslPassword``, ``connectPassword``, the connector's AWS
secret key) stay Pulumi secrets from here on.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import pulumi

from consumer_patch.connector import (
    CONNECTOR_NAME,
    DEFAULT_ARCHIVE_PREFIX,
    ArchiveLayout,
    ConnectorFlavor,
)

PROJECT = "agent-dlq"

DEFAULT_SOURCE_TOPIC = "agent-actions"
DEFAULT_CONSUMER_GROUP = "agent-actions-consumer"
DEFAULT_TRIAGE_GROUP = "agent-dlq-triage"
DEFAULT_REDRIVE_GROUP = "agent-dlq-redrive"

SASL_MECHANISMS = ("plain", "scram-sha256", "scram-sha512", "aws-iam")
# S3 refuses transitions to the infrequent-access classes before 30 days.
_MINIMUM_DAYS_BEFORE_TRANSITION = {"STANDARD_IA": 30, "ONEZONE_IA": 30}
_STORAGE_CLASSES = (
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
)


_ChoiceT = TypeVar("_ChoiceT", bound=StrEnum)


class ConfigError(ValueError):
    """A stack configuration value is missing or invalid; names the key."""


class Environment(StrEnum):
    """The environments this program has stacks for."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class ConnectorDeployment(StrEnum):
    """Where the S3 sink connector runs."""

    CONNECT_REST = "connect-rest"
    MSK_CONNECT = "msk-connect"


class MskAuthentication(StrEnum):
    """How MSK Connect authenticates to the cluster (the values AWS accepts)."""

    IAM = "IAM"
    NONE = "NONE"


@dataclass(frozen=True)
class KafkaSettings:
    """Cluster connection, topic durability and the principals to authorize."""

    bootstrap_servers: tuple[str, ...]
    source_topic: str
    tls_enabled: bool
    sasl_mechanism: str | None
    sasl_username: str | None
    sasl_password: pulumi.Output[str] | None
    replication_factor: int
    min_insync_replicas: int
    manage_acls: bool
    consumer_principal: str
    operator_principal: str
    redrive_principal: str
    connector_principal: str
    consumer_group: str
    triage_group: str
    redrive_group: str
    transactional_id_prefix: str | None


@dataclass(frozen=True)
class ArchiveSettings:
    """Archive and query-results buckets, lifecycle and the Glue/Athena names."""

    bucket_name: str
    results_bucket_name: str
    layout: ArchiveLayout
    transition_days: int
    transition_storage_class: str
    expiration_days: int
    noncurrent_expiration_days: int
    results_expiration_days: int
    glue_database: str
    athena_workgroup: str
    projection_start_date: str
    force_destroy: bool


@dataclass(frozen=True)
class MskConnectSettings:
    """What an MSK Connect connector needs beyond the connector configuration."""

    custom_plugin_arn: str
    custom_plugin_revision: int
    service_execution_role_arn: str
    bootstrap_servers: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    kafkaconnect_version: str
    authentication_type: MskAuthentication
    worker_count: int
    mcu_count: int


@dataclass(frozen=True)
class ConnectorSettings:
    """How the S3 sink is declared and with which plugin."""

    deployment: ConnectorDeployment
    flavor: ConnectorFlavor
    name: str
    tasks_max: int
    connect_url: str | None
    connect_username: str | None
    connect_password: pulumi.Output[str] | None
    aws_access_key_id: str | None
    aws_secret_access_key: pulumi.Output[str] | None
    msk: MskConnectSettings | None


@dataclass(frozen=True)
class StackConfig:
    """Everything one stack declares, validated."""

    environment: Environment
    aws_region: str
    kafka: KafkaSettings
    archive: ArchiveSettings
    connector: ConnectorSettings

    @property
    def tags(self) -> dict[str, str]:
        """Tags put on every AWS resource of the stack."""
        return {
            "project": PROJECT,
            "environment": self.environment.value,
            "managed-by": "pulumi",
        }


def load_config() -> StackConfig:
    """Read and validate the current stack's configuration.

    Raises:
        ConfigError: Naming the first key that is missing or invalid.
    """
    reader = _Reader(pulumi.Config(PROJECT))
    environment = reader.choice("environment", Environment)
    aws_region = pulumi.Config("aws").get("region")
    if not aws_region:
        raise ConfigError("aws:region is required")

    return StackConfig(
        environment=environment,
        aws_region=aws_region,
        kafka=_kafka_settings(reader),
        archive=_archive_settings(reader, environment),
        connector=_connector_settings(reader),
    )


def _kafka_settings(reader: _Reader) -> KafkaSettings:
    replication_factor = reader.integer("dlqReplicationFactor", minimum=1)
    min_insync_replicas = reader.integer("dlqMinInsyncReplicas", minimum=1)
    if min_insync_replicas > replication_factor:
        raise ConfigError(
            f"{reader.key('dlqMinInsyncReplicas')} ({min_insync_replicas}) must not "
            f"exceed {reader.key('dlqReplicationFactor')} ({replication_factor})"
        )

    mechanism = reader.optional_text("kafkaSaslMechanism")
    username = None
    password = None
    if mechanism is not None:
        if mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                f"{reader.key('kafkaSaslMechanism')} must be one of "
                f"{', '.join(SASL_MECHANISMS)}, got {mechanism!r}"
            )
        if mechanism != "aws-iam":
            username = reader.text("kafkaSaslUsername")
            password = reader.secret("kafkaSaslPassword")

    return KafkaSettings(
        bootstrap_servers=reader.text_list("kafkaBootstrapServers"),
        source_topic=reader.text("sourceTopic", default=DEFAULT_SOURCE_TOPIC),
        tls_enabled=reader.boolean("kafkaTlsEnabled", default=True),
        sasl_mechanism=mechanism,
        sasl_username=username,
        sasl_password=password,
        replication_factor=replication_factor,
        min_insync_replicas=min_insync_replicas,
        manage_acls=reader.boolean("manageAcls", default=True),
        consumer_principal=reader.principal("consumerPrincipal"),
        operator_principal=reader.principal("operatorPrincipal"),
        redrive_principal=reader.principal("redrivePrincipal"),
        connector_principal=reader.principal("connectorPrincipal"),
        consumer_group=reader.text("consumerGroup", default=DEFAULT_CONSUMER_GROUP),
        triage_group=reader.text("triageGroup", default=DEFAULT_TRIAGE_GROUP),
        redrive_group=reader.text("redriveGroup", default=DEFAULT_REDRIVE_GROUP),
        transactional_id_prefix=reader.optional_text("transactionalIdPrefix"),
    )


def _archive_settings(reader: _Reader, environment: Environment) -> ArchiveSettings:
    storage_class = reader.text("archiveTransitionStorageClass", default="STANDARD_IA")
    if storage_class not in _STORAGE_CLASSES:
        raise ConfigError(
            f"{reader.key('archiveTransitionStorageClass')} must be one of "
            f"{', '.join(_STORAGE_CLASSES)}, got {storage_class!r}"
        )
    transition_days = reader.integer(
        "archiveTransitionDays",
        minimum=_MINIMUM_DAYS_BEFORE_TRANSITION.get(storage_class, 1),
    )
    expiration_days = reader.integer("archiveExpirationDays", minimum=1)
    if expiration_days <= transition_days:
        raise ConfigError(
            f"{reader.key('archiveExpirationDays')} ({expiration_days}) must be "
            f"after {reader.key('archiveTransitionDays')} ({transition_days})"
        )

    try:
        layout = ArchiveLayout(
            prefix=reader.text("archivePrefix", default=DEFAULT_ARCHIVE_PREFIX)
        )
    except ValueError as error:
        raise ConfigError(f"{reader.key('archivePrefix')}: {error}") from None

    return ArchiveSettings(
        bucket_name=reader.text("archiveBucketName"),
        results_bucket_name=reader.text("athenaResultsBucketName"),
        layout=layout,
        transition_days=transition_days,
        transition_storage_class=storage_class,
        expiration_days=expiration_days,
        noncurrent_expiration_days=reader.integer(
            "archiveNoncurrentExpirationDays", default=30, minimum=1
        ),
        results_expiration_days=reader.integer(
            "athenaResultsExpirationDays", default=30, minimum=1
        ),
        glue_database=reader.text("glueDatabase", default=f"agent_dlq_{environment}"),
        athena_workgroup=reader.text(
            "athenaWorkgroup", default=f"agent-dlq-{environment}"
        ),
        projection_start_date=reader.date("archiveProjectionStartDate"),
        force_destroy=reader.boolean("archiveForceDestroy", default=False),
    )


def _connector_settings(reader: _Reader) -> ConnectorSettings:
    deployment = reader.choice(
        "connectorDeployment", ConnectorDeployment, default="connect-rest"
    )
    flavor = reader.choice("connectorFlavor", ConnectorFlavor)

    connect_url = None
    connect_username = None
    connect_password = None
    msk = None
    if deployment is ConnectorDeployment.CONNECT_REST:
        connect_url = reader.text("connectUrl")
        if not connect_url.startswith(("http://", "https://")):
            raise ConfigError(f"{reader.key('connectUrl')} must be an http(s) URL")
        connect_username = reader.optional_text("connectUsername")
        if connect_username is not None:
            connect_password = reader.secret("connectPassword")
    else:
        msk = _msk_settings(reader)

    access_key_id = reader.optional_text("connectorAwsAccessKeyId")
    secret_access_key = None
    if access_key_id is not None:
        secret_access_key = reader.secret("connectorAwsSecretAccessKey")

    return ConnectorSettings(
        deployment=deployment,
        flavor=flavor,
        name=reader.text("connectorName", default=CONNECTOR_NAME),
        tasks_max=reader.integer("connectorTasksMax", default=1, minimum=1),
        connect_url=connect_url,
        connect_username=connect_username,
        connect_password=connect_password,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        msk=msk,
    )


def _msk_settings(reader: _Reader) -> MskConnectSettings:
    return MskConnectSettings(
        custom_plugin_arn=reader.text("mskConnectCustomPluginArn"),
        custom_plugin_revision=reader.integer("mskConnectCustomPluginRevision"),
        service_execution_role_arn=reader.text("mskConnectServiceExecutionRoleArn"),
        bootstrap_servers=reader.text("mskConnectBootstrapServers"),
        subnets=reader.text_list("mskConnectSubnets"),
        security_groups=reader.text_list("mskConnectSecurityGroups"),
        kafkaconnect_version=reader.text("mskConnectKafkaconnectVersion"),
        authentication_type=reader.choice(
            "mskConnectAuthenticationType", MskAuthentication, default="IAM"
        ),
        worker_count=reader.integer("mskConnectWorkerCount", default=1, minimum=1),
        mcu_count=reader.integer("mskConnectMcuCount", default=1, minimum=1),
    )


class _Reader:
    """Typed access to one config namespace; every error names the key."""

    def __init__(self, config: pulumi.Config) -> None:
        self._config = config

    def key(self, name: str) -> str:
        return f"{self._config.name}:{name}"

    def optional_text(self, name: str) -> str | None:
        value = self._config.get(name)
        return value if value else None

    def text(self, name: str, default: str | None = None) -> str:
        value = self.optional_text(name) or default
        if value is None:
            raise ConfigError(f"{self.key(name)} is required")
        return value

    def secret(self, name: str) -> pulumi.Output[str]:
        value = self._config.get_secret(name)
        if value is None:
            raise ConfigError(
                f"{self.key(name)} is required; set it with "
                f"`pulumi config set --secret {self.key(name)} <value>`"
            )
        return value

    def integer(
        self, name: str, default: int | None = None, minimum: int | None = None
    ) -> int:
        try:
            value = self._config.get_int(name)
        except pulumi.ConfigTypeError:
            raise ConfigError(f"{self.key(name)} must be an integer") from None
        if value is None:
            value = default
        if value is None:
            raise ConfigError(f"{self.key(name)} is required")
        if minimum is not None and value < minimum:
            raise ConfigError(
                f"{self.key(name)} must be at least {minimum}, got {value}"
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        try:
            value = self._config.get_bool(name)
        except pulumi.ConfigTypeError:
            raise ConfigError(f"{self.key(name)} must be true or false") from None
        return default if value is None else value

    def text_list(self, name: str) -> tuple[str, ...]:
        try:
            value: Any = self._config.get_object(name)
        except pulumi.ConfigTypeError:
            raise ConfigError(f"{self.key(name)} must be a list of strings") from None
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if not _is_text_list(value):
            raise ConfigError(f"{self.key(name)} must be a non-empty list of strings")
        return tuple(value)

    def choice(
        self, name: str, kind: type[_ChoiceT], default: str | None = None
    ) -> _ChoiceT:
        value = self.text(name, default)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise ConfigError(
                f"{self.key(name)} must be one of {allowed}, got {value!r}"
            ) from None

    def principal(self, name: str) -> str:
        value = self.text(name)
        kind, _, identity = value.partition(":")
        if not kind or not identity or identity == "*":
            raise ConfigError(
                f"{self.key(name)} must name one principal such as User:alice, "
                f"got {value!r}"
            )
        return value

    def date(self, name: str) -> str:
        value = self.text(name)
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{self.key(name)} must be a YYYY-MM-DD date") from None
        return value


def _is_text_list(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(isinstance(item, str) and item for item in value)
    )
