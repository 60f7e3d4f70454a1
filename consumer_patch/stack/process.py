"""Background processes of the local stack: start detached, track by pid, stop.

A service's pid lives in ``.stack/pids/<service>.pid``. A pid file is trusted
only while the process it names is alive *and* its command line still looks
like that service, so a stale file whose pid was reused by an unrelated
process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from consumer_patch.errors import StackError

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


def wait_ready(
    child: subprocess.Popen[bytes],
    log_path: Path,
    what: str,
    answers: Callable[[], bool],
    timeout_seconds: float,
    interval_seconds: float = 0.5,
) -> None:
    """Poll ``answers`` until it is true.

    Raises:
        StackError: the child exited, or did not answer in time; the message
            holds the tail of its log.
    """
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        # The child's own exit status, not /proc: right after the fork its
        # command line is still Python's.
        if child.poll() is not None:
            raise StackError(
                f"{what} exited during start-up; last lines of {log_path}:\n"
                + log_tail(log_path)
            )
        if answers():
            return
        time.sleep(interval_seconds)
    raise StackError(
        f"{what} did not answer within {timeout_seconds:.0f}s; "
        f"last lines of {log_path}:\n" + log_tail(log_path)
    )


def stop_by_pid_file(
    pid_path: Path, marker: str, sig: signal.Signals = signal.SIGTERM
) -> None:
    """Stop the process a pid file names, if it is still ours; drop the file."""
    pid = read_pid(pid_path)
    if pid is not None:
        terminate(pid, marker, sig)
    pid_path.unlink(missing_ok=True)


def java_command(
    heap: str, log_config: Path | None, classpath: Path, main: Sequence[str]
) -> list[str]:
    """The command line of a Java service: heap, G1, log configuration, class path."""
    command = ["java", heap, "-XX:+UseG1GC", "-Djava.awt.headless=true"]
    if log_config is not None:
        command.append(f"-Dlog4j2.configurationFile={log_config}")
    return [*command, "-cp", f"{classpath}/*", *main]


def require_java(what: str) -> None:
    if shutil.which("java") is None:
        raise StackError(f"java is not on PATH; {what} needs Java 17+")
