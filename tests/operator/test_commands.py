"""stats, list, show and ack print exactly what the real consumer dead-lettered.

Runs ``agent-dlq`` in-process against the dead-letter topic that the shared
fixture filled through the real consumer on the local Kafka.
"""

from __future__ import annotations

import json
from collections import Counter

from tests.operator.conftest import (
    EXPECTED_BY_TYPE,
    SECOND_WAVE,
    SECOND_WAVE_BY_TYPE,
    DeadLetterTopic,
)

TOTAL = sum(EXPECTED_BY_TYPE.values())


def test_stats_counts_rate_and_depth_equal_what_was_produced(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    environment = dead_letter_topic.environment()

    run = cli(environment, "stats", "--json")

    assert run.code == 0, run.err
    stats = run.json()
    by_type = Counter()
    for row in stats["by_kind"]:
        assert row["error_category"] == "permanent"
        assert row["original_topic"] == dead_letter_topic.settings.kafka_topic
        by_type[row["error_type"]] += row["count"]
    assert by_type == EXPECTED_BY_TYPE
    assert stats["total"] == TOTAL
    assert stats["last_hour"]["count"] == TOTAL
    assert stats["last_hour"]["by_error_type"] == dict(EXPECTED_BY_TYPE)
    assert stats["depth"]["total"] == TOTAL
    assert stats["depth"]["by_error_type"] == dict(EXPECTED_BY_TYPE)
    assert stats["oldest"]["position"] in dead_letter_topic.positions()
    assert stats["newest"]["failed_at"] >= stats["oldest"]["failed_at"]


def test_stats_window_counts_only_the_second_wave(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    since = dead_letter_topic.boundary.isoformat()

    run = cli(dead_letter_topic.environment(), "stats", "--since", since, "--json")

    stats = run.json()
    assert stats["total"] == len(SECOND_WAVE)
    assert Counter(
        {row["error_type"]: row["count"] for row in stats["by_kind"]}
    ) == Counter(SECOND_WAVE_BY_TYPE)
    assert stats["last_hour"]["count"] == TOTAL


def test_stats_prints_a_table_for_people(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    run = cli(dead_letter_topic.environment(), "stats")

    assert run.code == 0
    assert "ERROR_TYPE" in run.out
    assert f"dead letters       {TOTAL}" in run.out
    assert f"last hour          {TOTAL}" in run.out


def test_ack_lowers_the_depth_by_exactly_what_it_marks_handled(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    environment = dead_letter_topic.environment()
    on_zero = sorted(
        record.offset for record in dead_letter_topic.records if record.partition == 0
    )
    through = on_zero[len(on_zero) // 2]
    marked = sum(1 for offset in on_zero if offset <= through)

    acked = cli(environment, "ack", "--through", f"0:{through}", "--json")
    after_one = cli(environment, "stats", "--json").json()
    cli(environment, "ack", "--all")
    after_all = cli(environment, "stats", "--json").json()
    backwards = cli(environment, "ack", "--through", "0:0", "--json").json()

    assert acked.code == 0, acked.err
    assert after_one["depth"]["total"] == TOTAL - marked
    assert after_one["depth"]["by_partition"]["0"] == len(on_zero) - marked
    assert after_all["depth"]["total"] == 0
    assert after_all["total"] == TOTAL
    assert [row["state"] for row in backwards["partitions"]] == ["unchanged"]


def test_list_filters_select_exactly_the_matching_dead_letters(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    environment = dead_letter_topic.environment()
    since = dead_letter_topic.boundary.isoformat()
    records = dead_letter_topic.records
    partition = Counter(r.partition for r in records).most_common(1)[0][0]
    on_partition = sorted(r.offset for r in records if r.partition == partition)
    first, last = on_partition[0], on_partition[-1]

    def listed(*arguments: str) -> set[str]:
        run = cli(environment, "list", "--limit", "1000", "--json", *arguments)
        assert run.code == 0, run.err
        return {row["position"] for row in run.json()["dead_letters"]}

    assert listed() == dead_letter_topic.positions()
    assert listed("--error-type", "NotJSONError") == dead_letter_topic.positions(
        "NotJSONError"
    )
    assert listed(
        "--error-type", "NullValueError", "--error-type", "NotUTF8Error"
    ) == dead_letter_topic.positions("NullValueError") | dead_letter_topic.positions(
        "NotUTF8Error"
    )
    second_wave = listed("--since", since)
    assert len(second_wave) == len(SECOND_WAVE)
    assert listed("--until", since) == dead_letter_topic.positions() - second_wave
    assert listed("--since", "1h") == dead_letter_topic.positions()
    assert listed("--correlation-id", "val-1") == {
        f"{r.partition}:{r.offset}"
        for r in records
        if json.loads(r.value)["correlation_id"] == "val-1"
    }
    assert listed(
        "--partition", str(partition), "--offsets", f"{first + 1}-{last}"
    ) == {f"{partition}:{offset}" for offset in on_partition[1:]}
    assert listed("--category", "transient") == set()


def test_list_limit_shows_the_oldest_and_says_how_many_matched(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    run = cli(dead_letter_topic.environment(), "list", "--limit", "2", "--json")
    table = cli(dead_letter_topic.environment(), "list", "--limit", "2")

    data = run.json()
    assert data["matched"] == TOTAL
    assert len(data["dead_letters"]) == 2
    assert data["dead_letters"][0]["failed_at"] <= data["dead_letters"][1]["failed_at"]
    assert "POSITION" in table.out
    assert f"{TOTAL - 2} more" in table.out


def test_show_prints_the_whole_envelope_and_the_original_json(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    environment = dead_letter_topic.environment()
    record = next(
        r
        for r in dead_letter_topic.records
        if json.loads(r.value)["error_type"] == "ValidationError"
    )
    position = f"{record.partition}:{record.offset}"
    pointer = f"{record.topic}-{record.partition}@{record.offset}"

    as_json = cli(environment, "show", position, "--json").json()
    by_pointer = cli(environment, "show", pointer, "--json").json()
    for_people = cli(environment, "show", position)

    envelope = json.loads(record.value)
    assert as_json["envelope"] == envelope
    assert by_pointer["envelope"] == envelope
    assert as_json["original_value_json"] == json.loads(envelope["original_value"])
    assert for_people.code == 0
    assert '"agent_name": "planner"' in for_people.out
    assert envelope["dead_letter_id"] in for_people.out
    assert "ValidationError" in for_people.out


def test_show_of_a_missing_position_is_a_clear_error(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    environment = dead_letter_topic.environment()

    past_end = cli(environment, "show", "0:999999")
    no_partition = cli(environment, "show", "99:0")
    not_a_position = cli(environment, "show", "abc")

    assert past_end.code == 1
    assert "no dead letter at 0:999999" in past_end.err
    assert no_partition.code == 1
    assert "has no partition 99" in no_partition.err
    assert not_a_position.code == 2
    assert "PARTITION:OFFSET" in not_a_position.err
    assert "Traceback" not in past_end.err + no_partition.err + not_a_position.err


def test_bad_arguments_are_usage_errors_without_tracebacks(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    environment = dead_letter_topic.environment()
    cases = [
        ("list", "--since", "2x"),
        ("list", "--offsets", "9-3"),
        ("list", "--limit", "0"),
        ("replay", "--rate", "fast", "--all"),
        ("replay",),
        ("watch", "--threshold", "-1"),
        ("stats", "--since", "1h", "--until", "2h"),
    ]

    for arguments in cases:
        run = cli(environment, *arguments)

        assert run.code == 2, arguments
        assert "error:" in run.err, arguments
        assert "Traceback" not in run.err, arguments
