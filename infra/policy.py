"""Policy checks over the resources a stack declares.

The checks read resource records (type token, name, physical id and
inputs, with Pulumi's camelCase keys), as Pulumi's unit-test mocks receive
them, so the tests run them on every stack without a cloud account. Rules:

- ``bucket-encrypted``: every S3 bucket has default SSE-KMS encryption.
- ``bucket-private``: every S3 bucket blocks all public access, has no
  public canned ACL and no policy statement allowing everyone.
- ``athena-results-encrypted``: every Athena workgroup encrypts results.
- ``prod-replication``: in prod, every topic has a replication factor of at
  least 3 and ``min.insync.replicas`` of at least 2.
- ``no-wildcard-write-acl``: no ACL lets any principal, or any resource,
  be written or administered.

This module has no Pulumi dependency.

Known limitation: the rules run in the test suite over the mocked program,
not during ``pulumi preview``; enforcing them at deployment time needs a
CrossGuard policy pack and the Pulumi CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:"
    "BucketServerSideEncryptionConfiguration"
)
BUCKET_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
ATHENA_WORKGROUP = "aws:athena/workgroup:Workgroup"
KAFKA_TOPIC = "kafka:index/topic:Topic"
KAFKA_ACL = "kafka:index/acl:Acl"

PROD_MINIMUM_REPLICATION_FACTOR = 3
PROD_MINIMUM_INSYNC_REPLICAS = 2

KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
PUBLIC_CANNED_ACLS = frozenset(
    {"public-read", "public-read-write", "authenticated-read"}
)
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
# Operations that change data or the cluster; "All" includes them.
WRITE_OPERATIONS = frozenset(
    {
        "All",
        "Write",
        "IdempotentWrite",
        "Create",
        "Delete",
        "Alter",
        "AlterConfigs",
        "ClusterAction",
    }
)


@dataclass(frozen=True)
class ResourceRecord:
    """A declared resource as the policy sees it."""

    type: str
    name: str
    resource_id: str
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    """One broken rule, naming the resource."""

    rule: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


def check_resources(
    records: Iterable[ResourceRecord], environment: str
) -> list[Violation]:
    """Apply every rule to ``records`` of a stack of ``environment``."""
    resources = list(records)
    return [
        *_buckets_encrypted(resources),
        *_buckets_private(resources),
        *_athena_results_encrypted(resources),
        *_prod_replication(resources, environment),
        *_no_wildcard_write_acls(resources),
    ]


def _of_type(records: list[ResourceRecord], type_token: str) -> list[ResourceRecord]:
    return [record for record in records if record.type == type_token]


def _bucket_keys(bucket: ResourceRecord) -> set[str]:
    # A bucket's companions refer to it by id (the bucket name) in state.
    return {bucket.resource_id, str(bucket.inputs.get("bucket", ""))} - {""}


def _attached(
    records: list[ResourceRecord], type_token: str, bucket: ResourceRecord
) -> list[ResourceRecord]:
    keys = _bucket_keys(bucket)
    return [
        record
        for record in _of_type(records, type_token)
        if record.inputs.get("bucket") in keys
    ]


def _buckets_encrypted(records: list[ResourceRecord]) -> Iterable[Violation]:
    for bucket in _of_type(records, BUCKET):
        if not any(
            _encrypts_with_kms(config.inputs)
            for config in _attached(records, BUCKET_ENCRYPTION, bucket)
        ):
            yield Violation(
                "bucket-encrypted",
                bucket.name,
                "no default SSE-KMS encryption with a key is configured",
            )


def _encrypts_with_kms(inputs: Mapping[str, Any]) -> bool:
    for rule in inputs.get("rules") or []:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") in KMS_ALGORITHMS and default.get(
            "kmsMasterKeyId"
        ):
            return True
    return False


def _buckets_private(records: list[ResourceRecord]) -> Iterable[Violation]:
    for bucket in _of_type(records, BUCKET):
        blocks = _attached(records, BUCKET_PUBLIC_ACCESS_BLOCK, bucket)
        if not any(
            all(block.inputs.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS)
            for block in blocks
        ):
            yield Violation(
                "bucket-private",
                bucket.name,
                "public access is not blocked by all four flags: "
                + ", ".join(PUBLIC_ACCESS_FLAGS),
            )

        acls = [bucket.inputs.get("acl")] + [
            acl.inputs.get("acl")
            for acl_type in BUCKET_ACLS
            for acl in _attached(records, acl_type, bucket)
        ]
        if any(acl in PUBLIC_CANNED_ACLS for acl in acls):
            yield Violation("bucket-private", bucket.name, "has a public canned ACL")

        policies = [bucket.inputs.get("policy")] + [
            policy.inputs.get("policy")
            for policy in _attached(records, BUCKET_POLICY, bucket)
        ]
        if any(_allows_everyone(policy) for policy in policies if policy):
            yield Violation(
                "bucket-private",
                bucket.name,
                "a bucket policy statement allows any principal",
            )


def _allows_everyone(policy: Any) -> bool:
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        principal = statement.get("Principal")
        everyone = principal == "*" or (
            isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))
        )
        if statement.get("Effect") == "Allow" and everyone:
            return True
    return False


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _athena_results_encrypted(records: list[ResourceRecord]) -> Iterable[Violation]:
    for workgroup in _of_type(records, ATHENA_WORKGROUP):
        configuration = workgroup.inputs.get("configuration") or {}
        results = configuration.get("resultConfiguration") or {}
        encryption = results.get("encryptionConfiguration") or {}
        if not encryption.get("encryptionOption"):
            yield Violation(
                "athena-results-encrypted",
                workgroup.name,
                "query results are written unencrypted",
            )
        if not configuration.get("enforceWorkgroupConfiguration"):
            yield Violation(
                "athena-results-encrypted",
                workgroup.name,
                "clients may override the result encryption",
            )


def _prod_replication(
    records: list[ResourceRecord], environment: str
) -> Iterable[Violation]:
    if environment != "prod":
        return
    for topic in _of_type(records, KAFKA_TOPIC):
        factor = int(topic.inputs.get("replicationFactor", 0))
        if factor < PROD_MINIMUM_REPLICATION_FACTOR:
            yield Violation(
                "prod-replication",
                topic.name,
                f"replication factor {factor} is below "
                f"{PROD_MINIMUM_REPLICATION_FACTOR}",
            )
        config = topic.inputs.get("config") or {}
        insync = int(config.get("min.insync.replicas", 1))
        if insync < PROD_MINIMUM_INSYNC_REPLICAS:
            yield Violation(
                "prod-replication",
                topic.name,
                f"min.insync.replicas {insync} is below {PROD_MINIMUM_INSYNC_REPLICAS}",
            )


def _no_wildcard_write_acls(records: list[ResourceRecord]) -> Iterable[Violation]:
    for acl in _of_type(records, KAFKA_ACL):
        inputs = acl.inputs
        if inputs.get("aclPermissionType") != "Allow":
            continue
        if inputs.get("aclOperation") not in WRITE_OPERATIONS:
            continue

        principal = str(inputs.get("aclPrincipal", ""))
        resource = str(inputs.get("aclResourceName", ""))
        pattern = inputs.get("resourcePatternTypeFilter", "Literal")
        if principal.endswith(":*"):
            reason = f"any principal ({principal})"
        elif resource == "*":
            reason = "every resource (*)"
        elif pattern == "Prefixed" and resource == "":
            reason = "every resource (empty prefix)"
        else:
            continue
        yield Violation(
            "no-wildcard-write-acl",
            acl.name,
            f"{inputs.get('aclOperation')} is granted to {reason}",
        )
