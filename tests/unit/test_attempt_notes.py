"""Attempt notes round-trip through offset metadata; anything else is ignored."""

from __future__ import annotations

import pytest

from consumer_patch.attempts import AttemptNote


def test_note_round_trips_and_fits_in_offset_metadata() -> None:
    note = AttemptNote(offset=2**62, attempts=999)

    encoded = note.encode()

    assert AttemptNote.decode(encoded) == note
    assert len(encoded.encode()) < 4096  # offset.metadata.max.bytes default


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        "",
        "some other tool's metadata",
        "[1, 2]",
        '{"kind": "other", "offset": 1, "attempts": 2}',
        '{"kind": "agent-dlq.in-place-attempts", "offset": -1, "attempts": 2}',
        '{"kind": "agent-dlq.in-place-attempts", "offset": 1, "attempts": "2"}',
        '{"kind": "agent-dlq.in-place-attempts", "offset": 1, "attempts": true}',
        '{"kind": "agent-dlq.in-place-attempts", "offset": 1}',
    ],
)
def test_metadata_that_is_not_a_note_is_ignored(metadata: str | None) -> None:
    assert AttemptNote.decode(metadata) is None
