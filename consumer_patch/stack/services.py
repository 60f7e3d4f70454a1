"""What every service of the local stack offers to the stack that runs it."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

from consumer_patch.stack import process

STACK_DIR_VARIABLE = "AGENT_DLQ_STACK_DIR"


@dataclass(frozen=True)
class StackPaths:
    """The folders of one local stack, all under one root (``.stack/``)."""

    root: Path

    @classmethod
    def default(cls) -> StackPaths:
        return cls(Path(os.environ.get(STACK_DIR_VARIABLE, ".stack")).absolute())

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def data(self, service: str) -> Path:
        return self.root / "data" / service

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid(self, service: str) -> Path:
        return self.pids / f"{service}.pid"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # "running", "stopped", "dead" or "external"
    pid: int | None
    detail: str

    @property
    def is_up(self) -> bool:
        return self.state in {"running", "external"}


class Service(Protocol):
    """One process of the local stack."""

    name: str

    def start(self) -> None:
        """Start the service (no-op when it runs) and wait until it answers."""

    def stop(self) -> None:
        """Stop exactly the process this stack started, if it still runs."""

    def status(self) -> ServiceStatus: ...

    def environment(self) -> dict[str, str]:
        """Connection settings clients need, written to ``.stack/env``."""


class State:
    """Small JSON state shared by services (ports chosen at first start)."""

    def __init__(self, path: Path):
        self._path = path

    def load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def section(self, name: str) -> dict[str, object]:
        return self.load().get(name, {})

    def stable_port(self, name: str) -> int:
        """The section's port: chosen free once, then the same on every start."""
        port = self.section(name).get("port")
        if isinstance(port, int):
            return port
        port = free_port()
        self.save_section(name, {**self.section(name), "port": port})
        return port

    def save_section(self, name: str, values: dict[str, object]) -> None:
        data = self.load()
        data[name] = values
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def pid_status(name: str, paths: StackPaths, marker: str, detail: str) -> ServiceStatus:
    """Status of a service tracked by its pid file: stopped, dead or running."""
    pid = process.read_pid(paths.pid(name))
    if pid is None:
        return ServiceStatus(name, "stopped", None, "not started")
    if not process.is_alive(pid, marker):
        return ServiceStatus(name, "dead", pid, f"pid {pid} is gone; see its log")
    return ServiceStatus(name, "running", pid, detail)


def log_config(paths: StackPaths) -> Path:
    """The log4j2 configuration the Java services share, written under config/."""
    path = paths.root / "config" / "log4j2.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    source = resources.files("consumer_patch.stack").joinpath("log4j2.properties")
    path.write_text(source.read_text())
    return path
