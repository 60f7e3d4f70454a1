"""S3 sink connector configuration and the archive layout it shares with Glue.

The dead-letter archive has one layout, described by :class:`ArchiveLayout`.
The connector's object keys and the Glue table's location and partition
projection template are all derived from it, so a change to the prefix moves
the writer and the reader together.

Three connector flavors write that layout:

- ``bundled``: ``agentdlq.connect.s3.ArchiveSinkConnector``, this project's
  own sink (source in ``connect/plugin/``); the one that runs on the local
  stack, because no third-party S3 sink resolves from the package registry
  reachable here. It writes each envelope byte for byte.
- ``aiven``: ``io.aiven.kafka.connect.s3.AivenKafkaConnectS3SinkConnector``,
  published on Maven Central.
- ``confluent``: ``io.confluent.connect.s3.S3SinkConnector``, the usual choice
  on self-managed Connect clusters and MSK Connect.

All three write one dead-letter envelope per line (JSON lines, gzip) under
``<prefix>/<topic>/dt=YYYY-MM-DD/``, dated by the record timestamp in UTC.

This module is pure: no I/O except reading the envelope schema, and no
dependency on Pulumi, so the local stack and the Pulumi program share it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "AIVEN_CONNECTOR_CLASS",
    "ARCHIVE_TABLE_NAME",
    "BUNDLED_CONNECTOR_CLASS",
    "CONFLUENT_CONNECTOR_CLASS",
    "CONNECTOR_NAME",
    "DEAD_LETTER_TOPIC",
    "DEFAULT_ARCHIVE_LAYOUT",
    "DEFAULT_ARCHIVE_PREFIX",
    "ArchiveLayout",
    "ConnectorFlavor",
    "GlueColumn",
    "connect_group_id",
    "envelope_glue_columns",
    "s3_sink_connector_config",
]

DEAD_LETTER_TOPIC = "agent-actions-dlq"
CONNECTOR_NAME = "agent-actions-dlq-s3-sink"
ARCHIVE_TABLE_NAME = "agent_actions_dlq"
DEFAULT_ARCHIVE_PREFIX = "dead-letters"
PARTITION_COLUMN = "dt"

BUNDLED_CONNECTOR_CLASS = "agentdlq.connect.s3.ArchiveSinkConnector"
AIVEN_CONNECTOR_CLASS = "io.aiven.kafka.connect.s3.AivenKafkaConnectS3SinkConnector"
CONFLUENT_CONNECTOR_CLASS = "io.confluent.connect.s3.S3SinkConnector"

_BYTE_ARRAY_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"
_JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"

# Confluent's sink holds records until a file is full or this much wall-clock
# time has passed; dead letters are rare, so the clock is what flushes them.
_CONFLUENT_FLUSH_SIZE = 1000
_CONFLUENT_ROTATE_SCHEDULE_MS = 10 * 60 * 1000
_ONE_DAY_MS = 24 * 60 * 60 * 1000

_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")

_SCHEMA_FILE = "dead-letter-envelope.v1.schema.json"


class ConnectorFlavor(StrEnum):
    """Which S3 sink connector plugin the configuration is written for."""

    BUNDLED = "bundled"
    AIVEN = "aiven"
    CONFLUENT = "confluent"


@dataclass(frozen=True)
class ArchiveLayout:
    """Where dead letters live in the archive bucket.

    Objects are written under ``<prefix>/<topic>/<column>=YYYY-MM-DD/``.

    Args:
        prefix: Folder in the bucket that holds the archive, without slashes
            at either end (``dead-letters`` or ``archive/v1``).
        topic: The dead-letter topic the connector reads.
    """

    prefix: str = DEFAULT_ARCHIVE_PREFIX
    topic: str = DEAD_LETTER_TOPIC

    def __post_init__(self) -> None:
        if not _PREFIX_PATTERN.fullmatch(self.prefix):
            raise ValueError(
                f"archive prefix {self.prefix!r} must be S3-safe path segments "
                "without a leading or trailing slash"
            )
        if not self.topic or "/" in self.topic:
            raise ValueError(f"archive topic {self.topic!r} must be a topic name")

    @property
    def partition_column(self) -> str:
        """Name of the date partition column (Hive style ``dt=YYYY-MM-DD``)."""
        return PARTITION_COLUMN

    @property
    def table_prefix(self) -> str:
        """Key prefix of every archived object, ending with a slash."""
        return f"{self.prefix}/{self.topic}/"

    def table_location(self, bucket: str) -> str:
        """S3 URL of the Glue table's location."""
        return f"s3://{bucket}/{self.table_prefix}"

    def partition_location_template(self, bucket: str) -> str:
        """Athena partition projection ``storage.location.template``."""
        column = self.partition_column
        return f"{self.table_location(bucket)}{column}=${{{column}}}/"

    def partition_prefix(self, day: date) -> str:
        """Key prefix of one day's objects."""
        return f"{self.table_prefix}{self.partition_column}={day.isoformat()}/"


DEFAULT_ARCHIVE_LAYOUT = ArchiveLayout()


def connect_group_id(name: str = CONNECTOR_NAME) -> str:
    """Consumer group a Kafka Connect sink named ``name`` reads with."""
    return f"connect-{name}"


def s3_sink_connector_config(
    flavor: ConnectorFlavor | str,
    *,
    bucket: str,
    region: str,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    path_style_access: bool = False,
    layout: ArchiveLayout = DEFAULT_ARCHIVE_LAYOUT,
    name: str = CONNECTOR_NAME,
    tasks_max: int = 1,
) -> dict[str, str]:
    """Build the configuration of the S3 sink that archives dead letters.

    The result is what ``PUT /connectors/{name}/config`` takes; it includes
    ``name``, so it also passes ``PUT /connector-plugins/{class}/config/validate``.

    Args:
        flavor: ``bundled``, ``aiven`` or ``confluent`` (see
            :class:`ConnectorFlavor`).
        bucket: Archive bucket name.
        region: AWS region of the bucket (any valid region for S3-compatible
            endpoints).
        endpoint_url: S3 endpoint for S3-compatible stores, such as
            ``http://127.0.0.1:9000``; ``None`` for AWS itself.
        access_key_id: Static credentials; ``None`` lets the connector use
            the default AWS credential chain of the Connect worker.
        secret_access_key: Given together with ``access_key_id``.
        path_style_access: Address the bucket in the path rather than the
            host name (``bundled`` and ``confluent``).
        layout: Where objects go; the Glue table must use the same one.
        name: Connector name; its consumer group is ``connect-<name>``.
        tasks_max: Upper bound on connector tasks (at most the topic's
            partition count is useful).

    Returns:
        Connector configuration, every value a string.

    Raises:
        ValueError: For an unknown flavor, an empty bucket or region, only
            one of the two credentials, or ``tasks_max`` below one.

    Note:
        Records are written as they are, never skipped: ``errors.tolerance``
        is ``none``, so a record the connector cannot write stops the task
        and holds the connector's offset instead of losing the record.
        The result holds ``secret_access_key`` in clear when it is given;
        treat it as a secret. Aiven's connector always uses path-style
        addressing when ``endpoint_url`` is set, whatever
        ``path_style_access`` says.
    """
    chosen = _flavor(flavor)
    if not bucket:
        raise ValueError("bucket must not be empty")
    if not region:
        raise ValueError("region must not be empty")
    if (access_key_id is None) != (secret_access_key is None):
        raise ValueError("access_key_id and secret_access_key go together")
    if tasks_max < 1:
        raise ValueError(f"tasks_max must be at least 1, got {tasks_max}")

    config = {
        "name": name,
        "tasks.max": str(tasks_max),
        "topics": layout.topic,
        # The envelope is JSON: parse it so it is written as an object, not
        # as an escaped string. Keys and headers may be any bytes, and only
        # the value is written, so they pass through without conversion.
        "key.converter": _BYTE_ARRAY_CONVERTER,
        "value.converter": _JSON_CONVERTER,
        "value.converter.schemas.enable": "false",
        "header.converter": _BYTE_ARRAY_CONVERTER,
        "errors.tolerance": "none",
    }

    if chosen is ConnectorFlavor.BUNDLED:
        config |= _bundled_settings(
            bucket,
            region,
            endpoint_url,
            access_key_id,
            secret_access_key,
            path_style_access,
            layout,
        )
        # Only the JSON converter reads this; the bytes pass through as sent.
        del config["value.converter.schemas.enable"]
    elif chosen is ConnectorFlavor.AIVEN:
        config |= _aiven_settings(
            bucket, region, endpoint_url, access_key_id, secret_access_key, layout
        )
    else:
        config |= _confluent_settings(
            bucket,
            region,
            endpoint_url,
            access_key_id,
            secret_access_key,
            path_style_access,
            layout,
        )
    return config


def _flavor(flavor: ConnectorFlavor | str) -> ConnectorFlavor:
    try:
        return ConnectorFlavor(flavor)
    except ValueError:
        known = ", ".join(member.value for member in ConnectorFlavor)
        raise ValueError(
            f"unknown connector flavor {flavor!r}; expected one of: {known}"
        ) from None


# Known limitation: the Aiven and Confluent keys below follow each connector's
# published configuration reference; no Connect worker with either plugin has
# validated them yet (PUT /connector-plugins/{class}/config/validate does).
def _bundled_settings(
    bucket: str,
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    path_style_access: bool,
    layout: ArchiveLayout,
) -> dict[str, str]:
    settings = {
        "connector.class": BUNDLED_CONNECTOR_CLASS,
        # The envelope is already one compact line of JSON, validated before
        # it was sent: written byte for byte, the archive holds exactly what
        # the topic holds (the connector refuses values that are not).
        "value.converter": _BYTE_ARRAY_CONVERTER,
        "s3.bucket.name": bucket,
        "s3.region": region,
        "s3.path.style.access": "true" if path_style_access else "false",
        "archive.prefix": layout.prefix,
        "archive.partition.column": layout.partition_column,
    }
    if endpoint_url is not None:
        settings["s3.endpoint.url"] = endpoint_url
    if access_key_id is not None and secret_access_key is not None:
        settings["aws.access.key.id"] = access_key_id
        settings["aws.secret.access.key"] = secret_access_key
    return settings


def _aiven_settings(
    bucket: str,
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    layout: ArchiveLayout,
) -> dict[str, str]:
    day = "-".join(f"{{{{timestamp:unit={unit}}}}}" for unit in ("yyyy", "MM", "dd"))
    file_name = "{{topic}}-{{partition}}-{{start_offset:padding=true}}.jsonl.gz"
    settings = {
        "connector.class": AIVEN_CONNECTOR_CLASS,
        "aws.s3.bucket.name": bucket,
        "aws.s3.region": region,
        "format.output.type": "jsonl",
        "format.output.fields": "value",
        "format.output.fields.value.encoding": "none",
        # Without the envelope each line is the dead-letter envelope itself,
        # which is what the Glue table's columns describe.
        "format.output.envelope": "false",
        "file.compression.type": "gzip",
        "file.name.template": (
            f"{layout.prefix}/{{{{topic}}}}/{layout.partition_column}={day}/{file_name}"
        ),
        # Date by the record timestamp (when the record was dead-lettered),
        # not by when the connector happened to flush it.
        "file.name.timestamp.source": "EVENT",
        "file.name.timestamp.timezone": "UTC",
    }
    if endpoint_url is not None:
        settings["aws.s3.endpoint"] = endpoint_url
    if access_key_id is not None and secret_access_key is not None:
        settings["aws.access.key.id"] = access_key_id
        settings["aws.secret.access.key"] = secret_access_key
    return settings


def _confluent_settings(
    bucket: str,
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    path_style_access: bool,
    layout: ArchiveLayout,
) -> dict[str, str]:
    # Confluent writes <topics.dir>/<topic>/<path.format>/<file>, which is the
    # same layout as long as topics.dir is the archive prefix.
    settings = {
        "connector.class": CONFLUENT_CONNECTOR_CLASS,
        "storage.class": "io.confluent.connect.s3.storage.S3Storage",
        "s3.bucket.name": bucket,
        "s3.region": region,
        "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
        "s3.compression.type": "gzip",
        "topics.dir": layout.prefix,
        "partitioner.class": (
            "io.confluent.connect.storage.partitioner.TimeBasedPartitioner"
        ),
        "path.format": f"'{layout.partition_column}'=YYYY-MM-dd",
        "partition.duration.ms": str(_ONE_DAY_MS),
        "timestamp.extractor": "Record",
        "locale": "en-US",
        "timezone": "UTC",
        "flush.size": str(_CONFLUENT_FLUSH_SIZE),
        "rotate.schedule.interval.ms": str(_CONFLUENT_ROTATE_SCHEDULE_MS),
        "s3.path.style.access.enabled": "true" if path_style_access else "false",
    }
    if endpoint_url is not None:
        settings["store.url"] = endpoint_url
    if access_key_id is not None and secret_access_key is not None:
        settings["aws.access.key.id"] = access_key_id
        settings["aws.secret.access.key"] = secret_access_key
    return settings


class GlueColumn(NamedTuple):
    """One column of the archive table, in Hive type syntax."""

    name: str
    type: str
    comment: str


def envelope_glue_columns(schema_path: Path | None = None) -> list[GlueColumn]:
    """Derive the archive table's columns from the dead-letter envelope schema.

    Every top-level property of the schema becomes a column, in schema
    order. JSON types map to Hive types: string to ``string``, integer to
    ``bigint``, number to ``double``, boolean to ``boolean``, arrays to
    ``array<...>`` and objects to ``struct<...>``. Nullable types map like
    their non-null part; enums and constants take the type of their values.
    ``failed_at`` stays a ``string`` (RFC 3339 text); queries parse it.

    Args:
        schema_path: The schema file; by default the packaged or repository
            copy of ``dead-letter-envelope.v1.schema.json``.

    Raises:
        ValueError: When a property uses a construct with no column type.
    """
    schema = _load_schema(schema_path or _default_schema_path())
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        raise ValueError("envelope schema has no properties")

    columns = []
    for name, definition in properties.items():
        column_type = _hive_type(definition, schema, name)
        comment = (
            definition.get("description", "") if isinstance(definition, dict) else ""
        )
        columns.append(GlueColumn(name, column_type, str(comment)))
    return columns


def _default_schema_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (
        here / "_schemas" / _SCHEMA_FILE,
        here.parent / "schemas" / _SCHEMA_FILE,
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{_SCHEMA_FILE} not found beside the package")


def _load_schema(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} does not hold a JSON Schema object")
    return loaded


_SCALAR_TYPES = {
    "string": "string",
    "integer": "bigint",
    "number": "double",
    "boolean": "boolean",
}


def _hive_type(definition: Any, root: dict[str, Any], where: str) -> str:
    if not isinstance(definition, dict):
        raise ValueError(f"{where}: schema must be an object")

    if "$ref" in definition:
        return _hive_type(_resolve(definition["$ref"], root), root, where)
    if "const" in definition:
        return _type_of_values([definition["const"]], where)
    if "enum" in definition:
        return _type_of_values(list(definition["enum"]), where)

    declared = definition.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    non_null = [name for name in types if name != "null"]
    if len(non_null) != 1:
        raise ValueError(f"{where}: cannot map JSON types {types} to one column type")

    json_type = non_null[0]
    if json_type in _SCALAR_TYPES:
        return _SCALAR_TYPES[json_type]
    if json_type == "array":
        item = _hive_type(definition.get("items"), root, f"{where}[]")
        return f"array<{item}>"
    if json_type == "object":
        return _struct_type(definition, root, where)
    raise ValueError(f"{where}: unsupported JSON type {json_type!r}")


def _struct_type(definition: dict[str, Any], root: dict[str, Any], where: str) -> str:
    properties = definition.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise ValueError(f"{where}: objects need declared properties to be a struct")
    fields = ",".join(
        f"{name}:{_hive_type(child, root, f'{where}.{name}')}"
        for name, child in properties.items()
    )
    return f"struct<{fields}>"


def _type_of_values(values: list[Any], where: str) -> str:
    present = [value for value in values if value is not None]
    if not present:
        raise ValueError(f"{where}: no non-null value to take a type from")
    if all(isinstance(value, bool) for value in present):
        return "boolean"
    if all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        return "bigint"
    if all(isinstance(value, int | float) for value in present):
        return "double"
    if all(isinstance(value, str) for value in present):
        return "string"
    raise ValueError(f"{where}: values {present} have no common column type")


def _resolve(reference: Any, root: dict[str, Any]) -> Any:
    if not isinstance(reference, str) or not reference.startswith("#/"):
        raise ValueError(f"only local references are supported, got {reference!r}")
    node: Any = root
    for part in reference[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"reference {reference!r} does not resolve")
        node = node[part]
    return node
