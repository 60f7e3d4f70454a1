"""The encrypted, private buckets: the dead-letter archive and Athena's results."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from consumer_patch.connector import ArchiveLayout

from .config import ArchiveSettings, Environment

# Connectors upload with multipart; parts of an upload that never completed
# cost storage and are invisible, so they are cleaned up after a week.
ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 7
KMS_DELETION_WINDOW_DAYS = 30


class PrivateBucket(pulumi.ComponentResource):
    """A bucket that is KMS-encrypted, versioned, TLS-only and never public."""

    bucket: aws.s3.Bucket

    def __init__(
        self,
        name: str,
        bucket_name: str,
        kms_key_arn: pulumi.Input[str],
        lifecycle_rules: Sequence[aws.s3.BucketLifecycleConfigurationRuleArgs],
        force_destroy: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-dlq:storage:PrivateBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.bucket = aws.s3.Bucket(
            name, bucket=bucket_name, force_destroy=force_destroy, opts=child
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        # Object ACLs are disabled: access is decided by IAM and the policy.
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(
                object_ownership="BucketOwnerEnforced"
            ),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=list(lifecycle_rules),
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=_deny_insecure_transport(self.bucket.arn),
            # S3 rejects policy changes while the public access block is
            # being applied, so the policy waits for it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )

        self.register_outputs({"bucketName": self.bucket.bucket})


class DeadLetterArchive(pulumi.ComponentResource):
    """KMS key, archive bucket, Athena results bucket and the writer policy."""

    key: aws.kms.Key
    archive: PrivateBucket
    results: PrivateBucket
    writer_policy: aws.iam.Policy

    def __init__(
        self,
        name: str,
        settings: ArchiveSettings,
        environment: Environment,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-dlq:storage:DeadLetterArchive", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protect = environment is Environment.PROD

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"agent-dlq archive and query results ({environment})",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/agent-dlq-{environment}",
            target_key_id=self.key.key_id,
            opts=child,
        )

        self.archive = PrivateBucket(
            f"{name}-bucket",
            bucket_name=settings.bucket_name,
            kms_key_arn=self.key.arn,
            lifecycle_rules=[_archive_lifecycle(settings)],
            force_destroy=settings.force_destroy,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.results = PrivateBucket(
            f"{name}-query-results",
            bucket_name=settings.results_bucket_name,
            kms_key_arn=self.key.arn,
            lifecycle_rules=[_results_lifecycle(settings)],
            force_destroy=True,
            opts=child,
        )
        self.writer_policy = aws.iam.Policy(
            f"{name}-writer",
            description="Lets the S3 sink connector write the dead-letter archive",
            policy=_writer_policy(
                self.archive.bucket.arn, self.key.arn, settings.layout
            ),
            opts=child,
        )

        self.register_outputs(
            {
                "archiveBucket": self.archive.bucket.bucket,
                "resultsBucket": self.results.bucket.bucket,
                "kmsKeyArn": self.key.arn,
                "writerPolicyArn": self.writer_policy.arn,
            }
        )


def _archive_lifecycle(
    settings: ArchiveSettings,
) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="dead-letter-archive",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(
            prefix=settings.layout.table_prefix
        ),
        transitions=[
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                days=settings.transition_days,
                storage_class=settings.transition_storage_class,
            )
        ],
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
            days=settings.expiration_days
        ),
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=settings.noncurrent_expiration_days
        ),
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS
        ),
    )


def _results_lifecycle(
    settings: ArchiveSettings,
) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="query-results",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
            days=settings.results_expiration_days
        ),
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=1
        ),
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS
        ),
    )


def _deny_insecure_transport(bucket_arn: pulumi.Output[str]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def _writer_policy(
    bucket_arn: pulumi.Output[str],
    key_arn: pulumi.Output[str],
    layout: ArchiveLayout,
) -> pulumi.Output[str]:
    objects = pulumi.Output.concat(bucket_arn, "/", layout.table_prefix, "*")
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteArchiveObjects",
                    "Effect": "Allow",
                    "Action": [
                        "s3:PutObject",
                        "s3:GetObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": [objects],
                },
                {
                    "Sid": "ListArchivePrefix",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    "Resource": [bucket_arn],
                },
                {
                    "Sid": "EncryptArchiveObjects",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                    "Resource": [key_arn],
                },
            ],
        }
    )
