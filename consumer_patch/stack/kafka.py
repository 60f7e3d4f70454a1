"""Apache Kafka 4.x as one combined broker and controller (KRaft) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from consumer_patch.errors import StackError
from consumer_patch.stack import maven, process
from consumer_patch.stack.services import (
    ServiceStatus,
    StackPaths,
    State,
    free_port,
    log_config,
    pid_status,
)

NAME = "kafka"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
READY_TIMEOUT_SECONDS = 90.0
HEAP = "-Xmx768m"

# One node, so every internal topic must live with a single replica; the
# transaction log settings are what makes transactional producers work.
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
"""


class KafkaService:
    name = NAME

    def __init__(self, paths: StackPaths, state: State):
        self._paths = paths
        self._state = state

    @property
    def _data(self) -> Path:
        return self._paths.data(NAME)

    def _ports(self) -> tuple[int, int]:
        section = self._state.section(NAME)
        port, controller_port = section.get("port"), section.get("controller_port")
        if isinstance(port, int) and isinstance(controller_port, int):
            return port, controller_port
        # Ports are chosen once: the controller address is part of the
        # formatted KRaft metadata, so it must not change between starts.
        port, controller_port = free_port(), free_port()
        self._state.save_section(
            NAME, {"port": port, "controller_port": controller_port}
        )
        return port, controller_port

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self._ports()[0]}"

    def environment(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}

    @property
    def _config_path(self) -> Path:
        # Also what identifies this stack's broker among the processes: its
        # command line ends with this file, so a stale pid file that now
        # names another stack's broker is not taken for ours.
        return self._paths.root / "config" / "kafka-server.properties"

    def status(self) -> ServiceStatus:
        return pid_status(
            NAME, self._paths, str(self._config_path), self.bootstrap_servers
        )

    def start(self) -> None:
        if self.status().state == "running":
            return
        process.require_java("the local Kafka broker")
        lib = maven.resolve_jars(NAME, self._paths.lib)
        properties = self._write_config()
        self._format_storage(lib, properties)

        command = process.java_command(
            HEAP, log_config(self._paths), lib, [MAIN_CLASS, str(properties)]
        )
        log = self._paths.log(NAME)
        child = process.spawn(command, log, dict(os.environ))
        process.write_pid(self._paths.pid(NAME), child.pid)
        try:
            process.wait_ready(
                child,
                log,
                "Kafka",
                lambda: asyncio.run(answers_metadata(self.bootstrap_servers)),
                READY_TIMEOUT_SECONDS,
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process.stop_by_pid_file(self._paths.pid(NAME), str(self._config_path))

    def _write_config(self) -> Path:
        port, controller_port = self._ports()
        path = self._config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            SERVER_PROPERTIES.format(
                port=port, controller_port=controller_port, log_dir=self._data
            )
        )
        return path

    def _format_storage(self, lib: Path, properties: Path) -> None:
        if (self._data / "meta.properties").is_file():
            return
        command = [
            "java",
            "-cp",
            f"{lib}/*",
            f"-Dlog4j2.configurationFile={log_config(self._paths)}",
            STORAGE_TOOL,
            "format",
            "--standalone",
            # One token: a random id may start with "-", which the tool's
            # argument parser would take for an option.
            f"--cluster-id={_cluster_id()}",
            "--config",
            str(properties),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise StackError(f"formatting KRaft storage failed:\n{output}")


async def answers_metadata(bootstrap_servers: str) -> bool:
    """Whether a broker at ``bootstrap_servers`` answers a metadata request."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=3000
    )
    # Refused connections are expected while the broker boots; aiokafka logs
    # each as an error, which would drown the start-up output.
    client_logger = logging.getLogger("aiokafka")
    previous_level = client_logger.level
    client_logger.setLevel(logging.CRITICAL)
    try:
        await admin.start()
        await admin.list_topics()
    except Exception:
        return False
    finally:
        await admin.close()
        client_logger.setLevel(previous_level)
    return True


def _cluster_id() -> str:
    # A KRaft cluster id is 16 random bytes in URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
