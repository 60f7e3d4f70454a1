"""Glue database and table over the archive, Athena workgroup and named queries."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from consumer_patch.connector import ARCHIVE_TABLE_NAME, envelope_glue_columns

from .config import ArchiveSettings
from .queries import named_queries

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


def archive_table_parameters(
    settings: ArchiveSettings, location_template: str
) -> dict[str, str]:
    """Table parameters: JSON classification and date partition projection.

    Note:
        With projection Athena computes the partitions from the template
        instead of reading them from Glue, so days appear without a crawler
        or ``MSCK REPAIR TABLE``.
    """
    column = settings.layout.partition_column
    return {
        "classification": "json",
        "compressionType": "gzip",
        "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        f"projection.{column}.type": "date",
        f"projection.{column}.format": "yyyy-MM-dd",
        f"projection.{column}.range": f"{settings.projection_start_date},NOW",
        f"projection.{column}.interval": "1",
        f"projection.{column}.interval.unit": "DAYS",
        "storage.location.template": location_template,
    }


class ArchiveCatalog(pulumi.ComponentResource):
    """The ``agent_actions_dlq`` table and the Athena workgroup that queries it."""

    database: aws.glue.CatalogDatabase
    table: aws.glue.CatalogTable
    workgroup: aws.athena.Workgroup
    queries: dict[str, aws.athena.NamedQuery]

    def __init__(
        self,
        name: str,
        settings: ArchiveSettings,
        archive_bucket: pulumi.Output[str],
        results_bucket: pulumi.Output[str],
        kms_key_arn: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-dlq:analytics:ArchiveCatalog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        layout = settings.layout

        self.database = aws.glue.CatalogDatabase(
            f"{name}-database",
            name=settings.glue_database,
            description="Archived dead letters of the agent-actions pipeline",
            opts=child,
        )
        self.table = aws.glue.CatalogTable(
            f"{name}-table",
            name=ARCHIVE_TABLE_NAME,
            database_name=self.database.name,
            description="One row per dead-letter envelope",
            table_type="EXTERNAL_TABLE",
            parameters=archive_bucket.apply(
                lambda bucket: archive_table_parameters(
                    settings, layout.partition_location_template(bucket)
                )
            ),
            partition_keys=[
                aws.glue.CatalogTablePartitionKeyArgs(
                    name=layout.partition_column,
                    type="string",
                    comment="UTC day of the dead-lettering, YYYY-MM-DD",
                )
            ],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=archive_bucket.apply(layout.table_location),
                input_format=TEXT_INPUT_FORMAT,
                output_format=TEXT_OUTPUT_FORMAT,
                compressed=True,
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=JSON_SERDE,
                    # A line that is not JSON fails the query instead of
                    # silently becoming a row of nulls.
                    parameters={"ignore.malformed.json": "false"},
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(
                        name=column.name, type=column.type, comment=column.comment
                    )
                    for column in envelope_glue_columns()
                ],
            ),
            opts=child,
        )

        self.workgroup = aws.athena.Workgroup(
            f"{name}-workgroup",
            name=settings.athena_workgroup,
            description="Queries over the dead-letter archive",
            force_destroy=True,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=results_bucket.apply(
                        lambda bucket: f"s3://{bucket}/athena/"
                    ),
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS", kms_key_arn=kms_key_arn
                    ),
                ),
            ),
            opts=child,
        )

        self.queries = {}
        for query in named_queries():
            self.queries[query.name] = aws.athena.NamedQuery(
                f"{name}-{query.name}",
                name=query.name,
                description=query.description,
                database=self.database.name,
                workgroup=self.workgroup.name,
                query=query.sql,
                opts=child,
            )

        self.register_outputs(
            {
                "database": self.database.name,
                "table": self.table.name,
                "workgroup": self.workgroup.name,
            }
        )
