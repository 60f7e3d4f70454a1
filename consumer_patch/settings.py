"""Settings from the environment and a ``.env`` file, validated at start-up.

The variable names are a contract shared with deployments and scripts; each
field below is read from the upper-case variable of the same name. Every
problem is reported at once, each naming its variable.
"""

from __future__ import annotations

import re
import socket
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumer_patch.errors import SettingsError

DEFAULT_DLQ_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
DEFAULT_DLQ_ALERT_RATE_PER_HOUR = 100
# Kafka's own rule for topic names (legal characters; length is checked apart).
TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")


class Settings(BaseSettings):
    """Configuration of the consumer and the operator tools."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    kafka_bootstrap_servers: str = Field("localhost:9092", min_length=1)
    kafka_topic: str = Field("agent-actions", min_length=1, max_length=249)
    kafka_group_id: str = Field("agent-actions-consumer", min_length=1)
    kafka_dlq_topic: str = Field("agent-actions-dlq", min_length=1, max_length=249)
    kafka_dlq_enabled: bool = True
    kafka_max_retries: int = Field(3, ge=0, le=100)
    kafka_retry_delay_ms: int = Field(1000, ge=1, le=3_600_000)
    kafka_retry_max_delay_ms: int = Field(30_000, ge=1, le=3_600_000)
    kafka_max_attempts: int = Field(10, ge=1, le=1000)
    kafka_batch_size: int = Field(100, ge=1, le=100_000)
    kafka_batch_timeout_ms: int = Field(1000, ge=1, le=600_000)
    kafka_auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    kafka_max_poll_interval_ms: int = Field(300_000, ge=1_000)
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000, le=3_600_000)
    kafka_dlq_transactional: bool = False
    kafka_transactional_id: str | None = None
    kafka_dlq_max_message_bytes: int = Field(DEFAULT_DLQ_MAX_MESSAGE_BYTES, ge=1024)
    kafka_security_protocol: Literal[
        "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"
    ] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = (
        None
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_redrive_group_id: str = Field("agent-dlq-redrive", min_length=1)
    kafka_redrive_delay_ms: int = Field(60_000, ge=0, le=86_400_000)
    kafka_redrive_max_delay_ms: int = Field(3_600_000, ge=0, le=604_800_000)
    kafka_redrive_transactional_id: str | None = None
    postgres_dsn: SecretStr | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9108, ge=0, le=65535)
    kafka_dlq_triage_group: str = Field("agent-dlq-triage", min_length=1)
    kafka_replay_allowed_topics: str = ""
    kafka_replay_ledger_topic: str = Field("", max_length=249)
    kafka_dlq_alert_rate_per_hour: int = Field(
        DEFAULT_DLQ_ALERT_RATE_PER_HOUR, ge=1, le=100_000_000
    )
    kafka_dlq_alert_depth: int | None = Field(None, ge=1)
    kafka_dlq_alert_webhook_url: SecretStr | None = None
    watch_metrics_port: int = Field(9109, ge=0, le=65535)

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.kafka_dlq_topic == self.kafka_topic:
            raise ValueError("KAFKA_DLQ_TOPIC must differ from KAFKA_TOPIC")
        if self.kafka_redrive_max_delay_ms < self.kafka_redrive_delay_ms:
            raise ValueError(
                "KAFKA_REDRIVE_MAX_DELAY_MS must be >= KAFKA_REDRIVE_DELAY_MS"
            )
        if self.kafka_retry_max_delay_ms < self.kafka_retry_delay_ms:
            raise ValueError("KAFKA_RETRY_MAX_DELAY_MS must be >= KAFKA_RETRY_DELAY_MS")
        if self.kafka_dlq_transactional and not self.kafka_dlq_enabled:
            raise ValueError(
                "KAFKA_DLQ_TRANSACTIONAL=true needs KAFKA_DLQ_ENABLED=true"
            )
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism
            and self.kafka_sasl_username
            and self.kafka_sasl_password
        ):
            raise ValueError(
                "KAFKA_SECURITY_PROTOCOL=SASL_* needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        self._check_operator_settings()
        return self

    def _check_operator_settings(self) -> None:
        if self.kafka_dlq_triage_group == self.kafka_group_id:
            raise ValueError("KAFKA_DLQ_TRIAGE_GROUP must differ from KAFKA_GROUP_ID")
        ledger = self.replay_ledger_topic
        if (
            not TOPIC_NAME.fullmatch(ledger)
            or len(ledger) > 249
            or ledger == self.kafka_dlq_topic
        ):
            raise ValueError(
                "KAFKA_REPLAY_LEDGER_TOPIC must be a topic name other than "
                "KAFKA_DLQ_TOPIC"
            )
        for topic in self.replay_allowed_topics:
            if not TOPIC_NAME.fullmatch(topic) or len(topic) > 249:
                raise ValueError(
                    f"KAFKA_REPLAY_ALLOWED_TOPICS: {topic!r} is not a topic name"
                )
            if topic in {self.kafka_dlq_topic, ledger}:
                raise ValueError(
                    "KAFKA_REPLAY_ALLOWED_TOPICS must not name the dead-letter "
                    f"topic or the replay ledger ({topic})"
                )
        webhook = self.kafka_dlq_alert_webhook_url
        if webhook is not None and not webhook.get_secret_value().startswith(
            ("http://", "https://")
        ):
            raise ValueError("KAFKA_DLQ_ALERT_WEBHOOK_URL must be an http(s) URL")

    @property
    def replay_allowed_topics(self) -> frozenset[str]:
        """Topics replay may write to; KAFKA_TOPIC alone unless configured."""
        listed = {
            name.strip()
            for name in self.kafka_replay_allowed_topics.split(",")
            if name.strip()
        }
        return frozenset(listed or {self.kafka_topic})

    @property
    def replay_ledger_topic(self) -> str:
        """The compacted topic that records which dead letters were replayed."""
        return self.kafka_replay_ledger_topic or (
            f"{self.kafka_dlq_topic}-replay-ledger"
        )

    @property
    def replay_transactional_id(self) -> str:
        """One id per ledger, so a new replay fences a crashed or running one."""
        return f"agent-dlq-replay.{self.replay_ledger_topic}"

    @property
    def transactional_id(self) -> str:
        """The producer's transactional id (stable across restarts of one instance).

        Note:
            Every instance of the consumer needs its own id, or instances fence
            each other; set KAFKA_TRANSACTIONAL_ID per instance (for example
            from the pod name). The default uses the host name.
        """
        return self.kafka_transactional_id or (
            f"{self.kafka_group_id}-dlq-{socket.gethostname()}"
        )

    @property
    def redrive_transactional_id(self) -> str:
        """The redrive worker's transactional id; one per worker instance."""
        return self.kafka_redrive_transactional_id or (
            f"{self.kafka_redrive_group_id}-{socket.gethostname()}"
        )

    def kafka_client_options(self) -> dict[str, object]:
        """Connection and security options shared by every Kafka client."""
        options: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            password = self.kafka_sasl_password
            options["sasl_plain_password"] = (
                password.get_secret_value() if password else None
            )
        if self.kafka_security_protocol in {"SSL", "SASL_SSL"}:
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=self.kafka_ssl_cafile,
                certfile=self.kafka_ssl_certfile,
                keyfile=self.kafka_ssl_keyfile,
            )
        return options

    def require_postgres_dsn(self) -> str:
        if self.postgres_dsn is None:
            raise SettingsError(
                "POSTGRES_DSN: required to store agent actions, but not set"
            )
        return self.postgres_dsn.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; raise SettingsError naming each bad one."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except PydanticValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: PydanticValidationError) -> str:
    problems = []
    for item in error.errors():
        location = "_".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        if location:
            given = item.get("input")
            shown = "" if isinstance(given, dict) else f" (got {given!r})"
            if "PASSWORD" in location or "DSN" in location:
                shown = ""
            problems.append(f"{location}: {message}{shown}")
        else:
            problems.append(message)
    return "invalid settings: " + "; ".join(problems)
