"""Conversions between protobuf well-known types and plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from crucible_common.protobuf import (
    struct,
    struct_to_dict,
    timestamp,
    to_datetime,
    value,
    value_to_python,
)


def test_struct_round_trip_turns_whole_floats_back_to_int() -> None:
    value = {
        "count": 3,
        "ratio": 0.5,
        "negative": -7,
        "flag": True,
        "nothing": None,
        "name": "x",
        "nested": {"depth": 2, "items": [1, 2.5, {"deeper": 10}], "empty": {}},
        "list": [[1, 2], []],
    }

    result = struct_to_dict(struct(value))

    assert result == value
    assert type(result["count"]) is int
    assert type(result["nested"]["depth"]) is int
    assert type(result["nested"]["items"][0]) is int
    assert type(result["nested"]["items"][2]["deeper"]) is int
    assert type(result["list"][0][1]) is int
    assert type(result["ratio"]) is float
    assert type(result["flag"]) is bool


def test_whole_float_becomes_int() -> None:
    assert struct_to_dict(struct({"n": 4.0})) == {"n": 4}


def test_numbers_beyond_double_precision_stay_float() -> None:
    result = struct_to_dict(struct({"big": 2.0**60}))

    assert type(result["big"]) is float


def test_empty_struct() -> None:
    assert struct_to_dict(struct({})) == {}


def test_timestamp_round_trip_is_utc() -> None:
    at = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))

    back = to_datetime(timestamp(at))

    assert back == at
    assert back.tzinfo == UTC


def test_timestamp_is_the_one_the_protobuf_library_makes() -> None:
    moments = [
        datetime(2026, 11, 27, 13, 5, 7, 654321, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),  # before the epoch: negative seconds
        datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    for at in moments:
        expected = Timestamp()
        expected.FromDatetime(at.astimezone(UTC))

        assert timestamp(at) == expected, at


def test_a_value_converts_as_the_json_it_holds() -> None:
    assert value_to_python(value({"a": [1, 2.5, None, "x", False]})) == {"a": [1, 2.5, None, "x", False]}
    assert value_to_python(value(3.0)) == 3
    assert value_to_python(value(None)) is None
