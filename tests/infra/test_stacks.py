"""Each stack declares the resources and arguments its environment needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumer_patch.connector import (
    AIVEN_CONNECTOR_CLASS,
    CONFLUENT_CONNECTOR_CLASS,
)
from infra.policy import check_resources
from tests.infra.mocking import REPOSITORY, Deployment

TOPIC = "kafka:index/topic:Topic"
ACL = "kafka:index/acl:Acl"
KAFKA_PROVIDER = "pulumi:providers:kafka"
BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:"
    "BucketServerSideEncryptionConfiguration"
)
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
GLUE_DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"
GLUE_TABLE = "aws:glue/catalogTable:CatalogTable"
WORKGROUP = "aws:athena/workgroup:Workgroup"
NAMED_QUERY = "aws:athena/namedQuery:NamedQuery"
DYNAMIC = "pulumi-python:dynamic:Resource"

# The design's facts, written out rather than imported from the program.
DLQ = "agent-actions-dlq"
SOURCE = "agent-actions"
LEDGER = "agent-actions-dlq-replay-ledger"
PARTITIONS = 3
RETENTION_MS = "604800000"
MAX_MESSAGE_BYTES = "8388608"
REPLICATION = {"dev": (1, "1"), "staging": (3, "2"), "prod": (3, "2")}
CONNECTOR_CLASS = {
    "dev": AIVEN_CONNECTOR_CLASS,
    "staging": CONFLUENT_CONNECTOR_CLASS,
    "prod": CONFLUENT_CONNECTOR_CLASS,
}
SECRET_MARKER = "4dabf18193072939515e22adb298388d"


def test_dead_letter_topic_has_three_partitions_and_seven_day_retention(
    deployment: Deployment,
) -> None:
    topic = deployment.one(TOPIC, DLQ)
    inputs = topic.inputs

    assert inputs["name"] == DLQ, f"{deployment.stack}: topic {topic.name} name"
    assert inputs["partitions"] == PARTITIONS, (
        f"{deployment.stack}: topic {topic.name} has {inputs['partitions']} "
        f"partitions, expected {PARTITIONS}"
    )
    config = inputs["config"]
    assert config["retention.ms"] == RETENTION_MS, f"{topic.name} retention.ms"
    assert config["max.message.bytes"] == MAX_MESSAGE_BYTES, (
        f"{topic.name} max.message.bytes"
    )
    assert config["cleanup.policy"] == "delete", f"{topic.name} cleanup.policy"
    assert config["unclean.leader.election.enable"] == "false", (
        f"{topic.name} must never elect an out-of-sync leader"
    )


def test_dead_letter_topic_replication_matches_environment(
    deployment: Deployment,
) -> None:
    topic = deployment.one(TOPIC, DLQ)
    factor, insync = REPLICATION[deployment.stack]

    assert topic.inputs["replicationFactor"] == factor, (
        f"{deployment.stack}: topic {topic.name} replication factor "
        f"{topic.inputs['replicationFactor']}, expected {factor}"
    )
    assert topic.inputs["config"]["min.insync.replicas"] == insync, (
        f"{deployment.stack}: topic {topic.name} min.insync.replicas"
    )


def test_replay_ledger_topic_is_compacted_and_as_durable_as_the_dlq(
    deployment: Deployment,
) -> None:
    topic = deployment.one(TOPIC, LEDGER)
    inputs = topic.inputs
    factor, insync = REPLICATION[deployment.stack]

    assert inputs["partitions"] == 1, f"{deployment.stack}: {topic.name} partitions"
    assert inputs["config"]["cleanup.policy"] == "compact,delete", (
        f"{deployment.stack}: {topic.name} cleanup.policy"
    )
    assert inputs["config"]["retention.ms"] == str(30 * 24 * 60 * 60 * 1000), (
        f"{deployment.stack}: {topic.name} retention.ms"
    )
    assert inputs["replicationFactor"] == factor, (
        f"{deployment.stack}: {topic.name} replication factor"
    )
    assert inputs["config"]["min.insync.replicas"] == insync, (
        f"{deployment.stack}: {topic.name} min.insync.replicas"
    )


def _expected_acls(stack: str) -> set[tuple[str, str, str, str, str]]:
    consumer = "User:agent-actions-consumer"
    operator = "User:agent-dlq-operator"
    redrive = "User:agent-dlq-redrive"
    connector = "User:agent-dlq-connect"
    literal = "Literal"
    expected = {
        (consumer, "Read", "Topic", SOURCE, literal),
        (consumer, "Read", "Group", "agent-actions-consumer", literal),
        (consumer, "Write", "Topic", DLQ, literal),
        (consumer, "Describe", "Topic", DLQ, literal),
        (consumer, "IdempotentWrite", "Cluster", "kafka-cluster", literal),
        (operator, "Read", "Topic", DLQ, literal),
        (operator, "Describe", "Topic", DLQ, literal),
        (operator, "Read", "Group", "agent-dlq-triage", literal),
        (operator, "Write", "Topic", SOURCE, literal),
        (operator, "Describe", "Topic", SOURCE, literal),
        (operator, "Read", "Topic", LEDGER, literal),
        (operator, "Write", "Topic", LEDGER, literal),
        (operator, "Describe", "Topic", LEDGER, literal),
        (operator, "IdempotentWrite", "Cluster", "kafka-cluster", literal),
        (operator, "Write", "TransactionalID", "agent-dlq-replay.", "Prefixed"),
        (operator, "Describe", "TransactionalID", "agent-dlq-replay.", "Prefixed"),
        (redrive, "Read", "Topic", DLQ, literal),
        (redrive, "Describe", "Topic", DLQ, literal),
        (redrive, "Read", "Group", "agent-dlq-redrive", literal),
        (redrive, "Write", "Topic", SOURCE, literal),
        (redrive, "Describe", "Topic", SOURCE, literal),
        (redrive, "IdempotentWrite", "Cluster", "kafka-cluster", literal),
        (redrive, "Write", "TransactionalID", "agent-dlq-redrive-", "Prefixed"),
        (redrive, "Describe", "TransactionalID", "agent-dlq-redrive-", "Prefixed"),
        (connector, "Read", "Topic", DLQ, literal),
        (connector, "Describe", "Topic", DLQ, literal),
        (connector, "Read", "Group", "connect-agent-actions-dlq-s3-sink", literal),
    }
    if stack in ("staging", "prod"):
        prefix = "agent-actions-consumer-"
        expected |= {
            (consumer, "Write", "TransactionalID", prefix, "Prefixed"),
            (consumer, "Describe", "TransactionalID", prefix, "Prefixed"),
        }
    return expected


def test_acls_grant_exactly_the_least_privileges(deployment: Deployment) -> None:
    declared = {}
    for acl in deployment.of_type(ACL):
        inputs = acl.inputs
        assert inputs["aclPermissionType"] == "Allow", f"ACL {acl.name} must allow"
        assert inputs["aclHost"] == "*", f"ACL {acl.name} host"
        key = (
            inputs["aclPrincipal"],
            inputs["aclOperation"],
            inputs["aclResourceType"],
            inputs["aclResourceName"],
            inputs["resourcePatternTypeFilter"],
        )
        declared[key] = acl.name

    expected = _expected_acls(deployment.stack)
    assert not expected - declared.keys(), (
        f"{deployment.stack}: missing ACLs {sorted(expected - declared.keys())}"
    )
    extra = {declared[key]: key for key in declared.keys() - expected}
    assert not extra, f"{deployment.stack}: unexpected ACLs {extra}"


def test_kafka_provider_uses_stack_config_and_keeps_password_secret(
    deployment: Deployment,
) -> None:
    provider = deployment.one(KAFKA_PROVIDER)
    inputs = provider.inputs

    assert (
        json.loads(inputs["bootstrapServers"])
        == (deployment.values["agent-dlq:kafkaBootstrapServers"])
    ), f"{deployment.stack}: provider {provider.name} bootstrap servers"
    assert inputs["tlsEnabled"] == "true", f"provider {provider.name} must use TLS"
    assert inputs["saslMechanism"] == "scram-sha512", f"provider {provider.name}"
    password = inputs["saslPassword"]
    assert isinstance(password, dict), f"provider {provider.name} saslPassword"
    assert SECRET_MARKER in password, (
        f"{deployment.stack}: provider {provider.name} saslPassword is not a secret"
    )


def test_every_bucket_is_kms_encrypted_versioned_and_private(
    deployment: Deployment,
) -> None:
    key_arn = deployment.one(KMS_KEY)
    buckets = deployment.of_type(BUCKET)
    names = {bucket.inputs["bucket"] for bucket in buckets}
    assert names == {
        deployment.values["agent-dlq:archiveBucketName"],
        deployment.values["agent-dlq:athenaResultsBucketName"],
    }, f"{deployment.stack}: bucket names"

    for bucket in buckets:
        encryption = deployment.attached(ENCRYPTION, bucket).inputs["rules"]
        default = encryption[0]["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms", f"bucket {bucket.name} SSE"
        assert default["kmsMasterKeyId"].endswith(key_arn.name), (
            f"bucket {bucket.name} must use the stack's KMS key"
        )
        assert encryption[0]["bucketKeyEnabled"] is True, f"bucket {bucket.name}"

        block = deployment.attached(PUBLIC_ACCESS_BLOCK, bucket).inputs
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block.get(flag) is True, (
                f"{deployment.stack}: bucket {bucket.name} public access {flag} "
                f"is {block.get(flag)}"
            )

        ownership = deployment.attached(OWNERSHIP, bucket).inputs["rule"]
        assert ownership["objectOwnership"] == "BucketOwnerEnforced", (
            f"bucket {bucket.name} must disable ACLs"
        )
        versioning = deployment.attached(VERSIONING, bucket).inputs
        assert versioning["versioningConfiguration"]["status"] == "Enabled", (
            f"bucket {bucket.name} versioning"
        )
        policy = json.loads(deployment.attached(BUCKET_POLICY, bucket).inputs["policy"])
        statement = policy["Statement"][0]
        assert statement["Effect"] == "Deny", f"bucket {bucket.name} policy"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, (
            f"bucket {bucket.name} must refuse plain HTTP"
        )


def test_archive_lifecycle_follows_stack_config(deployment: Deployment) -> None:
    values = deployment.values
    archive = next(
        bucket
        for bucket in deployment.of_type(BUCKET)
        if bucket.inputs["bucket"] == values["agent-dlq:archiveBucketName"]
    )
    (rule,) = deployment.attached(LIFECYCLE, archive).inputs["rules"]

    assert rule["status"] == "Enabled", f"bucket {archive.name} lifecycle"
    assert rule["filter"]["prefix"] == "dead-letters/agent-actions-dlq/", (
        f"bucket {archive.name} lifecycle must cover the archive prefix"
    )
    (transition,) = rule["transitions"]
    assert transition["days"] == values["agent-dlq:archiveTransitionDays"], (
        f"{deployment.stack}: bucket {archive.name} transition days"
    )
    assert transition["storageClass"] == "STANDARD_IA", f"bucket {archive.name}"
    assert rule["expiration"]["days"] == values["agent-dlq:archiveExpirationDays"], (
        f"{deployment.stack}: bucket {archive.name} expiration days"
    )
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7


def test_glue_table_reads_gzipped_json_lines_with_date_projection(
    deployment: Deployment,
) -> None:
    database = deployment.one(GLUE_DATABASE)
    table = deployment.one(GLUE_TABLE)
    bucket = deployment.values["agent-dlq:archiveBucketName"]
    inputs = table.inputs

    assert database.inputs["name"] == f"agent_dlq_{deployment.stack}"
    assert inputs["name"] == "agent_actions_dlq", f"table {table.name} name"
    assert inputs["databaseName"] == database.inputs["name"], f"table {table.name}"
    assert inputs["tableType"] == "EXTERNAL_TABLE", f"table {table.name}"
    descriptor = inputs["storageDescriptor"]
    assert descriptor["serDeInfo"]["serializationLibrary"] == (
        "org.openx.data.jsonserde.JsonSerDe"
    ), f"table {table.name} SerDe"
    assert descriptor["location"] == (
        f"s3://{bucket}/dead-letters/agent-actions-dlq/"
    ), f"{deployment.stack}: table {table.name} location"
    assert inputs["partitionKeys"] == [
        {
            "name": "dt",
            "type": "string",
            "comment": "UTC day of the dead-lettering, YYYY-MM-DD",
        }
    ], f"table {table.name} partition keys"

    parameters = inputs["parameters"]
    assert parameters["projection.enabled"] == "true", f"table {table.name}"
    assert parameters["projection.dt.type"] == "date", f"table {table.name}"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd", f"table {table.name}"
    assert parameters["projection.dt.range"] == "2026-01-01,NOW", f"table {table.name}"
    assert parameters["storage.location.template"] == (
        f"s3://{bucket}/dead-letters/agent-actions-dlq/dt=${{dt}}/"
    ), f"{deployment.stack}: table {table.name} projection template"


def test_athena_workgroup_encrypts_results_in_the_results_bucket(
    deployment: Deployment,
) -> None:
    workgroup = deployment.one(WORKGROUP)
    configuration = workgroup.inputs["configuration"]
    results = configuration["resultConfiguration"]
    bucket = deployment.values["agent-dlq:athenaResultsBucketName"]

    assert workgroup.inputs["name"] == f"agent-dlq-{deployment.stack}"
    assert configuration["enforceWorkgroupConfiguration"] is True, workgroup.name
    assert results["outputLocation"] == f"s3://{bucket}/athena/", workgroup.name
    encryption = results["encryptionConfiguration"]
    assert encryption["encryptionOption"] == "SSE_KMS", (
        f"workgroup {workgroup.name} results must be KMS-encrypted"
    )
    assert encryption["kmsKeyArn"], f"workgroup {workgroup.name} KMS key"


def test_named_queries_run_in_the_workgroup_against_the_archive_table(
    deployment: Deployment,
) -> None:
    queries = {query.inputs["name"]: query for query in deployment.of_type(NAMED_QUERY)}
    database = deployment.one(GLUE_DATABASE).inputs["name"]
    workgroup = deployment.one(WORKGROUP).inputs["name"]

    assert set(queries) == {
        "dead-letters-by-error-type",
        "dead-letters-by-correlation-id",
        "top-failing-agents",
    }, f"{deployment.stack}: named queries"
    for name, query in queries.items():
        assert query.inputs["database"] == database, f"query {name} database"
        assert query.inputs["workgroup"] == workgroup, f"query {name} workgroup"
        assert "FROM agent_actions_dlq" in query.inputs["query"], f"query {name}"
    agents = queries["top-failing-agents"].inputs["query"]
    assert "json_extract_scalar(original_value, '$.agent_name')" in agents
    assert "original_value_encoding = 'utf8'" in agents


def test_connector_is_upserted_on_the_stack_connect_cluster(
    deployment: Deployment,
) -> None:
    connector = deployment.one(DYNAMIC)
    inputs = connector.inputs
    config = inputs["config"]

    assert inputs["connectUrl"] == deployment.values["agent-dlq:connectUrl"], (
        f"{deployment.stack}: connector {connector.name} Connect URL"
    )
    assert inputs["connectorName"] == "agent-actions-dlq-s3-sink", connector.name
    assert config["name"] == inputs["connectorName"], connector.name
    assert config["connector.class"] == CONNECTOR_CLASS[deployment.stack], (
        f"{deployment.stack}: connector {connector.name} class"
    )
    assert config["errors.tolerance"] == "none", (
        f"connector {connector.name} must stop rather than skip a record"
    )
    assert "aws.secret.access.key" not in config, (
        f"connector {connector.name} should use the worker's AWS role"
    )
    if deployment.stack != "dev":
        assert SECRET_MARKER in inputs["password"], (
            f"{deployment.stack}: connector {connector.name} password not secret"
        )


def test_stack_passes_policy(deployment: Deployment) -> None:
    violations = check_resources(deployment.records, deployment.stack)

    assert not violations, "\n".join(str(violation) for violation in violations)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_file_sets_only_known_keys(stack: str) -> None:
    documented = (REPOSITORY / "docs" / "infra.md").read_text()
    text = (REPOSITORY / f"Pulumi.{stack}.yaml").read_text()
    keys = [
        line.split(":")[1].strip()
        for line in text.splitlines()
        if line.strip().startswith("agent-dlq:")
    ]

    undocumented = [key for key in keys if f"`{key}`" not in documented]
    assert not undocumented, (
        f"Pulumi.{stack}.yaml keys missing from docs: {undocumented}"
    )


def test_program_path_is_the_infra_directory() -> None:
    project = (REPOSITORY / "Pulumi.yaml").read_text()

    assert "main: infra/" in project
    assert Path(REPOSITORY / "infra" / "__main__.py").is_file()
