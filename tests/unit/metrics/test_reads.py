"""The client-side arithmetic of the reads: leaderboard sums, member records, cursors."""

from __future__ import annotations

import struct

import pytest

from services.metrics import queries
from services.metrics.keys import RECORD_BYTES, RECORD_FORMAT


def test_sum_u16_arrays_never_carries_between_members():
    def u16(values):
        return b"".join(v.to_bytes(2, "big") for v in values)

    days = [u16([65535, 1, 65535]), u16([65535, 65535]), u16([0, 0, 0, 7])]
    assert list(queries.sum_u16_arrays(days)) == [131070, 65536, 65535, 7]
    assert list(queries.sum_u16_arrays([])) == []


def test_member_records_unpack_and_tell_presence():
    blob = struct.pack(RECORD_FORMAT, 100, 300, 200, 250, 7, 3, 20000, 0)
    (record,) = queries._records(blob, first_id=5)
    assert (record.id, record.first_join, record.messages, record.active_days) == (5, 100, 7, 3)
    assert record.present  # joined again after leaving
    short = struct.pack(RECORD_FORMAT, 100, 100, 200, 150, 1, 1, 1, 0)[: RECORD_BYTES - 10]
    (left,) = queries._records(short)
    assert not left.present


def test_cursors_round_trip_and_foreign_ones_are_refused():
    position = (-(10**13) + 5, 42)
    assert queries.decode_cursor(queries.encode_cursor(position)) == position
    for bad in ("!!", "bm90IGEgY3Vyc29y", ""):
        with pytest.raises(queries.InvalidCursor):
            queries.decode_cursor(bad)
