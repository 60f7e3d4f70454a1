"""The connector configuration function, as the local stack will call it."""

from __future__ import annotations

from datetime import date

import pytest

from consumer_patch.connector import (
    AIVEN_CONNECTOR_CLASS,
    BUNDLED_CONNECTOR_CLASS,
    CONFLUENT_CONNECTOR_CLASS,
    ArchiveLayout,
    ConnectorFlavor,
    connect_group_id,
    s3_sink_connector_config,
)

LOCAL = {
    "bucket": "agent-dlq-archive",
    "region": "us-east-1",
    "endpoint_url": "http://127.0.0.1:9000",
    "access_key_id": "local-access",
    "secret_access_key": "local-secret",
    "path_style_access": True,
}


def test_aiven_config_points_at_the_local_endpoint_with_static_keys() -> None:
    config = s3_sink_connector_config(ConnectorFlavor.AIVEN, **LOCAL)

    assert config["connector.class"] == AIVEN_CONNECTOR_CLASS
    assert config["aws.s3.bucket.name"] == "agent-dlq-archive"
    assert config["aws.s3.region"] == "us-east-1"
    assert config["aws.s3.endpoint"] == "http://127.0.0.1:9000"
    assert config["aws.access.key.id"] == "local-access"
    assert config["aws.secret.access.key"] == "local-secret"


def test_aiven_config_writes_each_envelope_as_one_json_line() -> None:
    config = s3_sink_connector_config("aiven", bucket="b", region="eu-west-1")

    assert config["format.output.type"] == "jsonl"
    assert config["format.output.fields"] == "value"
    assert config["format.output.envelope"] == "false"
    assert config["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert config["value.converter.schemas.enable"] == "false"
    assert config["file.name.timestamp.source"] == "EVENT"
    assert config["file.name.template"].endswith(".jsonl.gz")


def test_bundled_config_writes_value_bytes_under_the_layout() -> None:
    layout = ArchiveLayout(prefix="archive/v1", topic="dlq")

    config = s3_sink_connector_config("bundled", layout=layout, **LOCAL)

    assert config["connector.class"] == BUNDLED_CONNECTOR_CLASS
    assert config["value.converter"] == (
        "org.apache.kafka.connect.converters.ByteArrayConverter"
    )
    assert "value.converter.schemas.enable" not in config
    assert config["archive.prefix"] == "archive/v1"
    assert config["archive.partition.column"] == layout.partition_column
    assert config["topics"] == "dlq"
    assert config["s3.endpoint.url"] == "http://127.0.0.1:9000"
    assert config["s3.path.style.access"] == "true"
    assert config["aws.secret.access.key"] == "local-secret"


def test_confluent_config_maps_endpoint_and_path_style() -> None:
    config = s3_sink_connector_config("confluent", **LOCAL)

    assert config["connector.class"] == CONFLUENT_CONNECTOR_CLASS
    assert config["s3.bucket.name"] == "agent-dlq-archive"
    assert config["store.url"] == "http://127.0.0.1:9000"
    assert config["s3.path.style.access.enabled"] == "true"
    assert config["topics.dir"] == "dead-letters"
    assert config["path.format"] == "'dt'=YYYY-MM-dd"
    assert config["timestamp.extractor"] == "Record"
    assert config["timezone"] == "UTC"


def test_without_credentials_the_worker_chain_is_used() -> None:
    for flavor in ConnectorFlavor:
        config = s3_sink_connector_config(flavor, bucket="b", region="eu-west-1")

        assert not [key for key in config if "access.key" in key], flavor
        assert "aws.s3.endpoint" not in config
        assert "store.url" not in config


def test_every_value_is_a_string_and_names_the_connector() -> None:
    config = s3_sink_connector_config(
        "confluent", bucket="b", region="eu-west-1", name="archive", tasks_max=3
    )

    assert all(isinstance(value, str) for value in config.values())
    assert config["name"] == "archive"
    assert config["tasks.max"] == "3"
    assert config["topics"] == "agent-actions-dlq"
    assert connect_group_id("archive") == "connect-archive"


def test_layout_moves_both_flavors_and_the_table_together() -> None:
    layout = ArchiveLayout(prefix="archive/v2")
    aiven = s3_sink_connector_config("aiven", bucket="b", region="r", layout=layout)
    confluent = s3_sink_connector_config(
        "confluent", bucket="b", region="r", layout=layout
    )

    assert aiven["file.name.template"].startswith("archive/v2/{{topic}}/dt=")
    assert confluent["topics.dir"] == "archive/v2"
    assert layout.table_location("b") == "s3://b/archive/v2/agent-actions-dlq/"
    assert layout.partition_location_template("b") == (
        "s3://b/archive/v2/agent-actions-dlq/dt=${dt}/"
    )
    assert layout.partition_prefix(date(2026, 1, 2)) == (
        "archive/v2/agent-actions-dlq/dt=2026-01-02/"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"flavor": "camel"}, "unknown connector flavor 'camel'"),
        ({"bucket": ""}, "bucket"),
        ({"region": ""}, "region"),
        ({"access_key_id": "only-one"}, "go together"),
        ({"tasks_max": 0}, "tasks_max"),
    ],
)
def test_invalid_arguments_are_refused(
    arguments: dict[str, object], message: str
) -> None:
    call: dict[str, object] = {"flavor": "aiven", "bucket": "b", "region": "r"}
    call |= arguments

    with pytest.raises(ValueError, match=message):
        s3_sink_connector_config(**call)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["", "/dead-letters", "dead-letters/", "a//b"])
def test_layout_refuses_prefixes_that_break_keys(prefix: str) -> None:
    with pytest.raises(ValueError, match="archive prefix"):
        ArchiveLayout(prefix=prefix)
