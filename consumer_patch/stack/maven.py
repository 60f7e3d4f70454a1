"""Resolve the jars of a local Java service from Maven Central with Maven.

Each service has a POM in ``poms/``; its dependencies are copied to
``.stack/lib/<service>/``. A stamp holding the POM's digest makes a second
resolution a no-op that downloads nothing and does not even start Maven.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from consumer_patch.errors import StackError


def pom_text(service: str) -> str:
    return (
        resources.files("consumer_patch.stack")
        .joinpath(f"poms/{service}.xml")
        .read_text()
    )


def resolve_jars(service: str, lib_root: Path) -> Path:
    """Copy the service's jars to ``lib_root/<service>`` and return that folder."""
    text = pom_text(service)
    digest = hashlib.sha256(text.encode()).hexdigest()
    target = lib_root / service
    stamp = target / ".resolved"
    if stamp.is_file() and stamp.read_text() == digest:
        return target

    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is not on PATH; it is needed to fetch the jars")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    pom = target / "pom.xml"
    pom.write_text(text)

    command = [
        "mvn",
        "-B",
        "-q",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={target}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise StackError(f"Maven could not resolve the {service} jars:\n{tail}")
    stamp.write_text(digest)
    return target
