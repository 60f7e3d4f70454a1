"""Settings come from the environment and .env, and bad ones are named at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer_patch.errors import SettingsError
from consumer_patch.settings import load_settings

VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "KAFKA_DLQ_TOPIC",
    "KAFKA_DLQ_ENABLED",
    "KAFKA_MAX_RETRIES",
    "KAFKA_BATCH_SIZE",
    "KAFKA_RETRY_DELAY_MS",
    "KAFKA_SECURITY_PROTOCOL",
    "POSTGRES_DSN",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_documented_contract() -> None:
    settings = load_settings()

    assert settings.kafka_topic == "agent-actions"
    assert settings.kafka_group_id == "agent-actions-consumer"
    assert settings.kafka_dlq_topic == "agent-actions-dlq"
    assert settings.kafka_dlq_enabled is True
    assert settings.kafka_max_retries == 3
    assert settings.kafka_retry_delay_ms == 1000
    assert settings.kafka_batch_size == 100
    assert settings.kafka_batch_timeout_ms == 1000


def test_environment_and_dotenv_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("KAFKA_BATCH_SIZE=7\nKAFKA_DLQ_ENABLED=false\n")
    monkeypatch.setenv("KAFKA_MAX_RETRIES", "5")

    settings = load_settings()

    assert settings.kafka_batch_size == 7
    assert settings.kafka_dlq_enabled is False
    assert settings.kafka_max_retries == 5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KAFKA_BATCH_SIZE", "0"),
        ("KAFKA_BATCH_SIZE", "many"),
        ("KAFKA_MAX_RETRIES", "-1"),
        ("KAFKA_DLQ_ENABLED", "perhaps"),
        ("KAFKA_RETRY_DELAY_MS", "0"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS"),
    ],
)
def test_bad_setting_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_every_bad_setting_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BATCH_SIZE", "0")
    monkeypatch.setenv("KAFKA_MAX_RETRIES", "x")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "KAFKA_BATCH_SIZE" in str(caught.value)
    assert "KAFKA_MAX_RETRIES" in str(caught.value)


def test_dead_letter_topic_must_differ_from_the_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_DLQ_TOPIC", "agent-actions")

    with pytest.raises(SettingsError, match="KAFKA_DLQ_TOPIC"):
        load_settings()


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")

    with pytest.raises(SettingsError, match="KAFKA_SASL_USERNAME"):
        load_settings()


def test_dsn_is_never_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_DSN", "postgresql://u:secret@h/db")
    monkeypatch.setenv("KAFKA_BATCH_SIZE", "0")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "secret" not in str(caught.value)


def test_replay_names_match_what_the_infrastructure_declares() -> None:
    from consumer_patch.topics import REPLAY_TRANSACTIONAL_ID_PREFIX, replay_ledger_name

    settings = load_settings()

    assert settings.replay_ledger_topic == replay_ledger_name(settings.kafka_dlq_topic)
    assert settings.replay_transactional_id.startswith(REPLAY_TRANSACTIONAL_ID_PREFIX)
    assert settings.redrive_transactional_id.startswith(
        f"{settings.kafka_redrive_group_id}-"
    )
