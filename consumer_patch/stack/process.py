"""Background processes of the local stack: start detached, track by pid, stop.

A service's pid lives in ``.stack/pids/<service>.pid``. A pid file is trusted
only while the process it names is alive *and* its command line still looks
like that service, so a stale file whose pid was reused by an unrelated
process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

STOP_TIMEOUT_SECONDS = 30.0
LOG_TAIL_LINES = 40


def spawn(
    command: Sequence[str], log_path: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session with stdout and stderr in ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return process


def command_line(pid: int) -> str | None:
    """The command line of a live, non-zombie process, or None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if "\nState:\tZ" in status:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def is_alive(pid: int, marker: str) -> bool:
    """Whether ``pid`` is alive and its command line contains ``marker``."""
    line = command_line(pid)
    return line is not None and marker in line


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid(pid_path: Path, pid: int) -> None:
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.write_text(f"{pid}\n")


def terminate(pid: int, marker: str, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal ``pid`` and wait for it to go; escalate to SIGKILL after a timeout."""
    if not is_alive(pid, marker):
        return
    _reap_child(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        _reap_child(pid)
        if not is_alive(pid, marker):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while is_alive(pid, marker):
        _reap_child(pid)
        time.sleep(0.1)


def _reap_child(pid: int) -> None:
    # Processes spawned by this interpreter stay zombies until waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return f"(no log at {log_path})"
    return "\n".join(text.splitlines()[-lines:])
