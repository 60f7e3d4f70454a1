"""Build the bundled S3 sink connector into a folder on Connect's ``plugin.path``.

The Java source lives in ``connect/plugin/`` (shipped in the wheel as
``consumer_patch/_connect_plugin``). Its runtime jars come from Maven Central
through ``poms/s3-sink.xml``; it is compiled against the worker's own jars,
so the Connect API always matches the worker. A stamp holding the digest of
the source and the POM makes a second build a no-op.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from consumer_patch.errors import StackError
from consumer_patch.stack import maven

PLUGIN = "s3-sink"
JAR_NAME = "agent-dlq-s3-sink.jar"
JAVA_RELEASE = "17"


def plugin_source() -> Path:
    """The ``connect/plugin`` folder: packaged copy first, then the repository's."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (
        package / "_connect_plugin",
        package.parent / "connect" / "plugin",
    ):
        if (candidate / "src").is_dir():
            return candidate
    raise StackError("the bundled connector's source (connect/plugin) is missing")


def build_plugin(plugins_root: Path, worker_lib: Path) -> Path:
    """Compile the connector into ``plugins_root/s3-sink``; return that folder."""
    source = plugin_source()
    target = maven.resolve_jars(PLUGIN, plugins_root)
    digest = _digest(source, maven.pom_text(PLUGIN))
    stamp = target / ".built"
    built = stamp.is_file() and stamp.read_text() == digest
    if built and (target / JAR_NAME).is_file():
        return target

    for tool in ("javac", "jar"):
        if shutil.which(tool) is None:
            raise StackError(f"{tool} is not on PATH; building the S3 sink needs a JDK")
    with tempfile.TemporaryDirectory(prefix="agent-dlq-plugin-") as scratch:
        classes = Path(scratch) / "classes"
        _compile(source, classes, [worker_lib, target])
        shutil.copytree(source / "META-INF", classes / "META-INF")
        jar = target / JAR_NAME
        _run(["jar", "--create", "--file", str(jar), "-C", str(classes), "."])
    stamp.write_text(digest)
    return target


def _compile(source: Path, classes: Path, libraries: list[Path]) -> None:
    files = sorted(str(path) for path in (source / "src").rglob("*.java"))
    classpath = ":".join(f"{folder}/*" for folder in libraries)
    _run(
        [
            "javac",
            "--release",
            JAVA_RELEASE,
            "-nowarn",
            "-cp",
            classpath,
            "-d",
            str(classes),
            *files,
        ]
    )


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise StackError(
            f"building the S3 sink connector failed ({command[0]}):\n{output}"
        )


def _digest(source: Path, pom: str) -> str:
    digest = hashlib.sha256(pom.encode())
    for path in sorted(source.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(source)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
