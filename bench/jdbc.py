"""Kafka Connect with a JDBC sink and Connect's own dead-letter queue.

The project's Connect worker (``consumer_patch.stack.connect``) runs the
comparison; two plugins are added to its ``plugin.path`` before it starts:
Debezium's JDBC sink connector with the PostgreSQL driver (resolved from
Maven Central through ``poms/jdbc-sink.xml``) and ``AgentActionStruct``, a
small transform of ours (``connect/``) that gives the schemaless JSON the
Struct schema a JDBC sink needs. Records that JsonConverter or the transform
cannot read go to Connect's dead-letter topic (``errors.tolerance=all``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from consumer_patch.errors import StackError
from consumer_patch.stack import maven
from consumer_patch.stack.connect import plugins_root
from consumer_patch.stack.services import StackPaths

JDBC_PLUGIN = "bench-jdbc-sink"
STRUCT_PLUGIN = "bench-agent-action-struct"
STRUCT_JAR = "agent-action-struct.jar"
JDBC_CONNECTOR_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"
STRUCT_TRANSFORM_CLASS = "agentdlq.bench.AgentActionStruct"
JAVA_RELEASE = "17"
HERE = Path(__file__).resolve().parent


def install_plugins(paths: StackPaths) -> None:
    """Put the JDBC sink and the transform on the Connect worker's plugin path.

    Raises:
        StackError: Maven could not resolve the connector, or there is no JDK.
    """
    root = plugins_root(paths)
    resolve_pom(HERE / "poms" / "jdbc-sink.xml", root / JDBC_PLUGIN)
    worker_lib = maven.resolve_jars("connect", paths.lib)
    build_transform(root / STRUCT_PLUGIN, worker_lib)


def resolve_pom(pom: Path, target: Path) -> None:
    """Copy the POM's dependencies into ``target``; a no-op once done."""
    text = pom.read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()
    stamp = target / ".resolved"
    if stamp.is_file() and stamp.read_text() == digest:
        return
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is not on PATH; it fetches the JDBC sink")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    copy = target / "pom.xml.resolved-from"
    copy.write_text(text)
    _run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(copy),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        ],
        "resolving the JDBC sink connector",
    )
    stamp.write_text(digest)


def build_transform(target: Path, worker_lib: Path) -> None:
    """Compile ``AgentActionStruct`` against the worker's jars into a jar."""
    source = HERE / "connect"
    files = sorted(source.rglob("*"))
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(source)).encode())
            digest.update(path.read_bytes())
    stamp = target / ".built"
    jar = target / STRUCT_JAR
    if stamp.is_file() and stamp.read_text() == digest.hexdigest() and jar.is_file():
        return
    if shutil.which("javac") is None:
        raise StackError("javac is not on PATH; the benchmark's transform needs a JDK")

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as scratch:
        classes = Path(scratch)
        java_files = [str(path) for path in files if path.suffix == ".java"]
        _run(
            [
                "javac",
                "--release",
                JAVA_RELEASE,
                "-nowarn",
                "-cp",
                f"{worker_lib}/*",
                "-d",
                str(classes),
                *java_files,
            ],
            "compiling the benchmark's Connect transform",
        )
        with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(classes.rglob("*.class")):
                archive.write(path, path.relative_to(classes).as_posix())
            for path in sorted((source / "META-INF").rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(source).as_posix())
    stamp.write_text(digest.hexdigest())


def connector_config(
    topic: str, dead_letter_topic: str, jdbc_url: str, table: str, batch_size: int
) -> dict[str, str]:
    """A JDBC sink into ``table`` with Connect's dead-letter queue on.

    Note:
        Upserts keyed by the source coordinates make redelivery idempotent,
        as ``ON CONFLICT DO NOTHING`` does for our consumer; one task reads
        the topic, as one consumer process does on our side.
    """
    return {
        "connector.class": JDBC_CONNECTOR_CLASS,
        "tasks.max": "1",
        "topics": topic,
        "connection.url": jdbc_url,
        "connection.username": "postgres",
        "connection.password": "postgres",
        "insert.mode": "upsert",
        "primary.key.mode": "kafka",
        "schema.evolution": "none",
        "quote.identifiers": "true",
        "collection.name.format": table,
        "table.name.format": table,
        "batch.size": str(batch_size),
        "use.time.zone": "UTC",
        "consumer.override.max.poll.records": str(batch_size),
        "consumer.override.auto.offset.reset": "earliest",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "transforms": "action",
        "transforms.action.type": STRUCT_TRANSFORM_CLASS,
        "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": dead_letter_topic,
        "errors.deadletterqueue.topic.replication.factor": "1",
        "errors.deadletterqueue.context.headers.enable": "true",
        "errors.log.enable": "false",
    }


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise StackError(f"{what} failed ({command[0]}):\n{output}")
