"""The connector writes where the Glue table reads, in the columns the schema has."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pulumi
import pytest

from consumer_patch.connector import (
    AIVEN_CONNECTOR_CLASS,
    CONFLUENT_CONNECTOR_CLASS,
    envelope_glue_columns,
    s3_sink_connector_config,
)
from consumer_patch.topics import dead_letter_topic
from infra.config import load_config
from infra.kafka import dead_letter_topic_config
from infra.program import build_program
from tests.infra.mocking import REPOSITORY, Deployment, RecordingMocks, configure

ENVELOPE_SCHEMA = REPOSITORY / "schemas" / "dead-letter-envelope.v1.schema.json"
DAY = date(2026, 12, 3)


def render_object_key(config: dict[str, str], partition: int, offset: int) -> str:
    """The object key the configured connector writes for one record of ``DAY``.

    Implemented here from each connector's documented key scheme, not taken
    from the code under test.
    """
    topic = config["topics"]
    if config["connector.class"] == AIVEN_CONNECTOR_CLASS:
        values = {
            "topic": topic,
            "partition": str(partition),
            "start_offset:padding=true": f"{offset:020d}",
            "timestamp:unit=yyyy": f"{DAY.year:04d}",
            "timestamp:unit=MM": f"{DAY.month:02d}",
            "timestamp:unit=dd": f"{DAY.day:02d}",
        }
        key = re.sub(
            r"\{\{\s*([^}]+?)\s*\}\}",
            lambda match: values[match.group(1)],
            config["file.name.template"],
        )
        assert "{{" not in key, f"unrendered variable in {key}"
        return key

    assert config["connector.class"] == CONFLUENT_CONNECTOR_CLASS
    # <topics.dir>/<topic>/<encoded partition>/<topic>+<partition>+<offset>.json.gz
    directory = _joda_date(config["path.format"], DAY)
    name = f"{topic}+{partition}+{offset:010d}.json.gz"
    return f"{config['topics.dir']}/{topic}/{directory}/{name}"


def _joda_date(pattern: str, day: date) -> str:
    tokens = {
        "YYYY": f"{day.year:04d}",
        "MM": f"{day.month:02d}",
        "dd": f"{day.day:02d}",
    }
    parts = re.split(r"('[^']*')", pattern)
    rendered = []
    for part in parts:
        if part.startswith("'"):
            rendered.append(part.strip("'"))
            continue
        for token, value in tokens.items():
            part = part.replace(token, value)
        rendered.append(part)
    return "".join(rendered)


def _java_date(pattern: str, day: date) -> str:
    return (
        pattern.replace("yyyy", f"{day.year:04d}")
        .replace("MM", f"{day.month:02d}")
        .replace("dd", f"{day.day:02d}")
    )


def test_connector_reads_the_dead_letter_topic(deployment: Deployment) -> None:
    topic = deployment.one("kafka:index/topic:Topic", "agent-actions-dlq")
    config = deployment.outputs["connector_config"]

    assert config["topics"] == topic.inputs["name"], (
        f"{deployment.stack}: connector reads {config['topics']}, "
        f"the DLQ topic {topic.name} is {topic.inputs['name']}"
    )
    connector_groups = {
        acl.inputs["aclResourceName"]
        for acl in deployment.of_type("kafka:index/acl:Acl")
        if acl.inputs["aclPrincipal"] == "User:agent-dlq-connect"
        and acl.inputs["aclResourceType"] == "Group"
    }
    assert connector_groups == {f"connect-{config['name']}"}, (
        f"{deployment.stack}: the connector's ACL must cover its Connect group"
    )


def test_connector_object_keys_fall_in_the_glue_partition_location(
    deployment: Deployment,
) -> None:
    config = deployment.outputs["connector_config"]
    parameters = deployment.outputs["table_parameters"]
    location = deployment.outputs["table_location"]
    bucket = config.get("aws.s3.bucket.name") or config["s3.bucket.name"]

    key = render_object_key(config, partition=2, offset=41)
    written = f"s3://{bucket}/{key}"
    day_value = _java_date(parameters["projection.dt.format"], DAY)
    partition_directory = parameters["storage.location.template"].replace(
        "${dt}", day_value
    )

    assert written.startswith(location), (
        f"{deployment.stack}: connector writes {written}, "
        f"outside the Glue table location {location}"
    )
    assert written.rsplit("/", 1)[0] + "/" == partition_directory, (
        f"{deployment.stack}: connector writes {written}, but Athena projects "
        f"day {day_value} to {partition_directory}"
    )


@pytest.mark.parametrize("flavor", ["aiven", "confluent"])
def test_both_flavors_write_the_same_partition_directory(flavor: str) -> None:
    config = s3_sink_connector_config(flavor, bucket="archive", region="eu-west-1")

    key = render_object_key(config, partition=0, offset=7)

    assert key.startswith("dead-letters/agent-actions-dlq/dt=2026-12-03/"), key


def test_glue_columns_match_the_envelope_schema(deployment: Deployment) -> None:
    schema = json.loads(ENVELOPE_SCHEMA.read_text())
    table = deployment.one("aws:glue/catalogTable:CatalogTable")
    columns = table.inputs["storageDescriptor"]["columns"]
    names = [column["name"] for column in columns]

    missing = [field for field in schema["properties"] if field not in names]
    assert not missing, f"table {table.name} lacks schema fields {missing}"
    extra = [name for name in names if name not in schema["properties"]]
    assert not extra, f"table {table.name} has columns not in the schema: {extra}"
    assert names == list(schema["properties"]), (
        f"table {table.name} columns are out of schema order"
    )
    assert set(schema["required"]) <= set(names)


def test_glue_column_types_follow_json_types() -> None:
    schema = json.loads(ENVELOPE_SCHEMA.read_text())
    types = {column.name: column.type for column in envelope_glue_columns()}
    expected_by_json_type = {"integer": "bigint", "boolean": "boolean"}

    for name, definition in schema["properties"].items():
        declared = definition.get("type")
        declared_types = [declared] if isinstance(declared, str) else declared or []
        for json_type, hive_type in expected_by_json_type.items():
            if json_type in declared_types:
                assert types[name] == hive_type, f"column {name}: {types[name]}"
    assert types["original_headers"] == (
        "array<struct<key:string,value:string,encoding:string>>"
    )
    assert types["failed_at"] == "string"


def test_glue_columns_follow_a_changed_schema(tmp_path: Any) -> None:
    schema = json.loads(ENVELOPE_SCHEMA.read_text())
    schema["properties"]["replayed_by"] = {"type": ["string", "null"]}
    changed = tmp_path / "envelope.json"
    changed.write_text(json.dumps(schema))

    columns = envelope_glue_columns(changed)

    assert columns[-1].name == "replayed_by"
    assert columns[-1].type == "string"


def test_declared_topic_settings_match_the_local_stack_declaration() -> None:
    local = dead_letter_topic(replication_factor=1, min_insync_replicas=1)
    declared = dead_letter_topic_config(min_insync_replicas=1)

    assert local.partitions == 3
    for key, value in local.configs.items():
        assert declared.get(key) == value, (
            f"{key}: Pulumi declares {declared.get(key)}, local stack {value}"
        )


@pulumi.runtime.test
def test_prod_connector_and_table_agree_on_bucket_and_prefix() -> pulumi.Output[None]:
    configure("prod", RecordingMocks())
    program = build_program(load_config())

    def check(values: list[Any]) -> None:
        config, location = values
        expected = (
            f"s3://{config['s3.bucket.name']}/{config['topics.dir']}/"
            f"{config['topics']}/"
        )
        assert location == expected, f"table location {location}, connector {expected}"

    return pulumi.Output.all(
        program.connector.connector_config,
        program.catalog.table.storage_descriptor.location,
    ).apply(check)
