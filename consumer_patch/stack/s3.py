"""s3proxy as the local S3 endpoint, storing objects as files under ``.stack/``.

Requests are signed (AWS Signature V2 or V4) with a key pair chosen at the
first start and kept in the stack's state, so clients exercise the same
authentication path as against AWS. The archive bucket is created at start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from consumer_patch.archive.s3 import (
    ACCESS_KEY_VARIABLE,
    BUCKET_VARIABLE,
    DEFAULT_REGION,
    ENDPOINT_VARIABLE,
    REGION_VARIABLE,
    SECRET_KEY_VARIABLE,
    S3Location,
    SimpleS3Client,
)
from consumer_patch.errors import StackError
from consumer_patch.stack import maven, process
from consumer_patch.stack.services import (
    ServiceStatus,
    StackPaths,
    State,
    free_port,
    pid_status,
)

NAME = "s3proxy"
READY_TIMEOUT_SECONDS = 60.0
HEAP = "-Xmx256m"
DEFAULT_BUCKET = "agent-dlq-archive"
ACCESS_KEY_ID = "agent-dlq-local"

PROPERTIES = """\
s3proxy.endpoint=http://127.0.0.1:{port}
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity={identity}
s3proxy.credential={credential}
s3proxy.ignore-unknown-headers=true
jclouds.provider=filesystem-nio2
jclouds.identity={identity}
jclouds.credential={credential}
jclouds.filesystem.basedir={data}
"""


class S3Service:
    name = NAME

    def __init__(self, paths: StackPaths, state: State):
        self._paths = paths
        self._state = state

    @property
    def _config_path(self) -> Path:
        return self._paths.root / "config" / "s3proxy.properties"

    @property
    def _marker(self) -> str:
        # The properties path names this stack's folder, which tells our
        # s3proxy apart from any other on the machine.
        return str(self._config_path)

    def _settings(self) -> tuple[int, str]:
        section = self._state.section(NAME)
        port, secret = section.get("port"), section.get("secret_access_key")
        if isinstance(port, int) and isinstance(secret, str):
            return port, secret
        port, secret = free_port(), secrets.token_urlsafe(24)
        self._state.save_section(NAME, {"port": port, "secret_access_key": secret})
        return port, secret

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._settings()[0]}"

    @property
    def location(self) -> S3Location:
        return S3Location(
            endpoint_url=self.endpoint_url,
            region=DEFAULT_REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=self._settings()[1],
            bucket=DEFAULT_BUCKET,
        )

    def environment(self) -> dict[str, str]:
        location = self.location
        return {
            ENDPOINT_VARIABLE: location.endpoint_url,
            ACCESS_KEY_VARIABLE: location.access_key_id,
            SECRET_KEY_VARIABLE: location.secret_access_key,
            REGION_VARIABLE: location.region,
            BUCKET_VARIABLE: location.bucket,
        }

    def status(self) -> ServiceStatus:
        detail = f"{self.endpoint_url} bucket {DEFAULT_BUCKET}"
        return pid_status(NAME, self._paths, self._marker, detail)

    def start(self) -> None:
        if self.status().state == "running":
            SimpleS3Client(self.location).create_bucket()
            return
        process.require_java("s3proxy")
        jar = _single_jar(maven.resolve_jars(NAME, self._paths.lib))
        self._write_config()

        command = [
            "java",
            HEAP,
            "-jar",
            str(jar),
            "--properties",
            str(self._config_path),
        ]
        log = self._paths.log(NAME)
        child = process.spawn(command, log, dict(os.environ))
        process.write_pid(self._paths.pid(NAME), child.pid)
        try:
            client = SimpleS3Client(self.location)
            process.wait_ready(
                child, log, "s3proxy", client.ping, READY_TIMEOUT_SECONDS, 0.3
            )
            client.create_bucket()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process.stop_by_pid_file(self._paths.pid(NAME), self._marker)

    def _write_config(self) -> None:
        port, secret = self._settings()
        data = self._paths.data(NAME)
        data.mkdir(parents=True, exist_ok=True)
        self._config_path.parent.mkdir(parents=True, exist_ok=True)
        self._config_path.write_text(
            PROPERTIES.format(
                port=port, identity=ACCESS_KEY_ID, credential=secret, data=data
            )
        )


def _single_jar(folder: Path) -> Path:
    jars = sorted(folder.glob("s3proxy-*.jar"))
    if len(jars) != 1:
        raise StackError(f"expected one s3proxy jar in {folder}, found {len(jars)}")
    return jars[0]
