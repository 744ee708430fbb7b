"""Ids the runtime draws: a new instance's id and its lease token."""

from __future__ import annotations

import uuid

from replaykit.runtime.clock import random_token, uuid4_hex


def test_instance_ids_are_random_version_4_uuids_in_hex() -> None:
    ids = [uuid4_hex() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.hex == value and len(value) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_lease_tokens_are_32_random_hex_digits() -> None:
    tokens = {random_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
