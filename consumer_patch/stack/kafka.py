"""Apache Kafka 4.x as one combined broker and controller (KRaft) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import subprocess
import time
import uuid
from importlib import resources
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from consumer_patch.errors import StackError
from consumer_patch.stack import maven, process
from consumer_patch.stack.services import ServiceStatus, StackPaths, State, free_port

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

    def _pid(self) -> int | None:
        return process.read_pid(self._paths.pid(NAME))

    def status(self) -> ServiceStatus:
        pid = self._pid()
        if pid is None:
            return ServiceStatus(NAME, "stopped", None, "not started")
        if not process.is_alive(pid, MAIN_CLASS):
            return ServiceStatus(NAME, "dead", pid, f"pid {pid} is gone; see its log")
        return ServiceStatus(NAME, "running", pid, self.bootstrap_servers)

    def start(self) -> None:
        if self.status().state == "running":
            return
        if shutil.which("java") is None:
            raise StackError(
                "java is not on PATH; the local Kafka broker needs Java 17+"
            )
        lib = maven.resolve_jars(NAME, self._paths.lib)
        properties = self._write_config()
        self._format_storage(lib, properties)

        command = [
            "java",
            HEAP,
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._log_config()}",
            "-cp",
            f"{lib}/*",
            MAIN_CLASS,
            str(properties),
        ]
        log = self._paths.log(NAME)
        child = process.spawn(command, log, dict(os.environ))
        process.write_pid(self._paths.pid(NAME), child.pid)
        try:
            self._wait_ready(child, log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        pid = self._pid()
        if pid is not None:
            process.terminate(pid, MAIN_CLASS)
        self._paths.pid(NAME).unlink(missing_ok=True)

    def _write_config(self) -> Path:
        port, controller_port = self._ports()
        config_dir = self._paths.root / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        path = config_dir / "kafka-server.properties"
        path.write_text(
            SERVER_PROPERTIES.format(
                port=port, controller_port=controller_port, log_dir=self._data
            )
        )
        return path

    def _log_config(self) -> Path:
        path = self._paths.root / "config" / "log4j2.properties"
        source = resources.files("consumer_patch.stack").joinpath("log4j2.properties")
        path.write_text(source.read_text())
        return path

    def _format_storage(self, lib: Path, properties: Path) -> None:
        if (self._data / "meta.properties").is_file():
            return
        command = [
            "java",
            "-cp",
            f"{lib}/*",
            f"-Dlog4j2.configurationFile={self._log_config()}",
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

    def _wait_ready(self, child: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            # The child's own exit status, not /proc: right after the fork the
            # command line is still Python's.
            if child.poll() is not None:
                raise StackError(
                    f"Kafka exited during start-up; last lines of {log}:\n"
                    + process.log_tail(log)
                )
            if asyncio.run(answers_metadata(self.bootstrap_servers)):
                return
            time.sleep(0.5)
        raise StackError(
            "Kafka did not answer metadata requests within "
            f"{READY_TIMEOUT_SECONDS:.0f}s; last lines of {log}:\n"
            + process.log_tail(log)
        )


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
