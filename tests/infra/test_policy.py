"""The policy catches what must never be deployed, on the mocked resources."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from infra.policy import ResourceRecord, Violation, check_resources
from tests.infra.mocking import Deployment, deploy

BUCKET = "aws:s3/bucket:Bucket"


@pytest.fixture(scope="module")
def prod() -> Deployment:
    return deploy("prod")


def _changed(
    records: list[ResourceRecord],
    type_token: str,
    change: Callable[[dict[str, object]], None],
    name: str | None = None,
) -> list[ResourceRecord]:
    """Copy of ``records`` with ``change`` applied to the first match's inputs."""
    result = []
    done = False
    for record in records:
        if not done and record.type == type_token and name in (None, record.name):
            inputs = copy.deepcopy(dict(record.inputs))
            change(inputs)
            record = replace(record, inputs=inputs)
            done = True
        result.append(record)
    assert done, f"no {type_token} {name or ''} to change"
    return result


def _rules(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(violation.rule, violation.resource) for violation in violations}


def test_declared_prod_stack_has_no_violation(prod: Deployment) -> None:
    assert check_resources(prod.records, "prod") == []


def test_public_access_not_blocked_makes_the_bucket_public(prod: Deployment) -> None:
    def unblock(inputs: dict[str, object]) -> None:
        inputs["restrictPublicBuckets"] = False

    records = _changed(
        prod.records,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        unblock,
        name="archive-bucket-public-access",
    )

    assert _rules(check_resources(records, "prod")) == {
        ("bucket-private", "archive-bucket")
    }


def test_bucket_without_public_access_block_is_public(prod: Deployment) -> None:
    records = [
        record
        for record in prod.records
        if record.name != "archive-query-results-public-access"
    ]

    assert ("bucket-private", "archive-query-results") in _rules(
        check_resources(records, "prod")
    )


def test_public_read_acl_and_open_policy_are_caught(prod: Deployment) -> None:
    def public_acl(inputs: dict[str, object]) -> None:
        inputs["acl"] = "public-read"

    def open_policy(inputs: dict[str, object]) -> None:
        inputs["policy"] = json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:*"}
                ]
            }
        )

    with_acl = _changed(prod.records, BUCKET, public_acl, name="archive-bucket")
    with_policy = _changed(
        prod.records,
        "aws:s3/bucketPolicy:BucketPolicy",
        open_policy,
        name="archive-query-results-tls-only",
    )

    assert _rules(check_resources(with_acl, "prod")) == {
        ("bucket-private", "archive-bucket")
    }
    assert _rules(check_resources(with_policy, "prod")) == {
        ("bucket-private", "archive-query-results")
    }


def test_bucket_without_kms_encryption_is_caught(prod: Deployment) -> None:
    def aes(inputs: dict[str, object]) -> None:
        inputs["rules"] = [
            {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
        ]

    records = _changed(
        prod.records,
        "aws:s3/bucketServerSideEncryptionConfiguration:"
        "BucketServerSideEncryptionConfiguration",
        aes,
        name="archive-bucket-encryption",
    )

    assert _rules(check_resources(records, "prod")) == {
        ("bucket-encrypted", "archive-bucket")
    }


def test_unencrypted_athena_results_are_caught(prod: Deployment) -> None:
    def plain(inputs: dict[str, object]) -> None:
        configuration = inputs["configuration"]
        assert isinstance(configuration, dict)
        del configuration["resultConfiguration"]["encryptionConfiguration"]

    records = _changed(prod.records, "aws:athena/workgroup:Workgroup", plain)

    assert _rules(check_resources(records, "prod")) == {
        ("athena-results-encrypted", "archive-catalog-workgroup")
    }


@pytest.mark.parametrize(
    ("factor", "insync", "expected"),
    [(1, "1", 2), (2, "1", 2), (3, "1", 1), (3, "2", 0)],
)
def test_prod_topics_need_three_replicas_and_two_in_sync(
    prod: Deployment, factor: int, insync: str, expected: int
) -> None:
    def durability(inputs: dict[str, object]) -> None:
        inputs["replicationFactor"] = factor
        config = inputs["config"]
        assert isinstance(config, dict)
        config["min.insync.replicas"] = insync

    records = _changed(
        prod.records, "kafka:index/topic:Topic", durability, "agent-actions-dlq"
    )
    violations = check_resources(records, "prod")

    assert len(violations) == expected, violations
    assert {violation.rule for violation in violations} <= {"prod-replication"}
    assert all(violation.resource == "agent-actions-dlq" for violation in violations)


def test_one_replica_is_allowed_outside_prod() -> None:
    dev = deploy("dev")

    assert check_resources(dev.records, "dev") == []
    assert check_resources(dev.records, "staging") == []
    assert _rules(check_resources(dev.records, "prod")) == {
        ("prod-replication", "agent-actions-dlq"),
        ("prod-replication", "agent-actions-dlq-replay-ledger"),
    }


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("aclPrincipal", "User:*", "any principal"),
        ("aclResourceName", "*", "every resource (*)"),
    ],
)
def test_wildcard_write_acls_are_caught(
    prod: Deployment, field: str, value: str, reason: str
) -> None:
    def widen(inputs: dict[str, object]) -> None:
        inputs[field] = value

    records = _changed(
        prod.records,
        "kafka:index/acl:Acl",
        widen,
        name="consumer-write-topic-agent-actions-dlq",
    )
    violations = check_resources(records, "prod")

    assert _rules(violations) == {
        ("no-wildcard-write-acl", "consumer-write-topic-agent-actions-dlq")
    }
    assert reason in violations[0].message


def test_empty_prefix_write_acl_is_caught(prod: Deployment) -> None:
    def empty_prefix(inputs: dict[str, object]) -> None:
        inputs["aclResourceName"] = ""

    name = "consumer-write-transactionalid-agent-actions-consumer--prefixed"
    records = _changed(prod.records, "kafka:index/acl:Acl", empty_prefix, name=name)

    assert _rules(check_resources(records, "prod")) == {("no-wildcard-write-acl", name)}


def test_wildcard_read_acl_is_not_a_write_violation(prod: Deployment) -> None:
    def widen(inputs: dict[str, object]) -> None:
        inputs["aclPrincipal"] = "User:*"

    records = _changed(
        prod.records,
        "kafka:index/acl:Acl",
        widen,
        name="operator-read-topic-agent-actions-dlq",
    )

    assert check_resources(records, "prod") == []
