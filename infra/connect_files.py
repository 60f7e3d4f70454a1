"""Write the example connector configurations in ``connect/`` from the shared function.

Run ``python -m infra.connect_files`` after changing
:func:`consumer_patch.connector.s3_sink_connector_config`; a test fails while
the files and the function disagree. Secrets are never written: the local
example reads its keys through Kafka Connect's environment config provider.
"""

from __future__ import annotations

import json
from pathlib import Path

from consumer_patch.connector import s3_sink_connector_config

CONNECT_DIRECTORY = Path(__file__).resolve().parent.parent / "connect"


def example_configs() -> dict[str, dict[str, str]]:
    """File name to configuration, for each example in ``connect/``."""
    return {
        "s3-sink.bundled.local.json": s3_sink_connector_config(
            "bundled",
            bucket="agent-dlq-archive",
            region="us-east-1",
            endpoint_url="http://127.0.0.1:9000",
            access_key_id="${env:AWS_ACCESS_KEY_ID}",
            secret_access_key="${env:AWS_SECRET_ACCESS_KEY}",
            path_style_access=True,
        ),
        "s3-sink.aiven.local.json": s3_sink_connector_config(
            "aiven",
            bucket="agent-dlq-archive",
            region="us-east-1",
            endpoint_url="http://127.0.0.1:9000",
            access_key_id="${env:AWS_ACCESS_KEY_ID}",
            secret_access_key="${env:AWS_SECRET_ACCESS_KEY}",
            path_style_access=True,
        ),
        "s3-sink.confluent.prod.json": s3_sink_connector_config(
            "confluent",
            bucket="agent-dlq-archive-prod",
            region="eu-west-1",
            tasks_max=3,
        ),
    }


def render(config: dict[str, str]) -> str:
    """The file text of one configuration: sorted, indented JSON."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name, config in example_configs().items():
        (CONNECT_DIRECTORY / name).write_text(render(config), encoding="utf-8")


if __name__ == "__main__":
    main()
