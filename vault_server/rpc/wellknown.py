"""Checked conversions of ``google.protobuf`` Timestamp and Duration fields.

protobuf's ``ToDatetime``/``ToTimedelta`` raise ``ValueError``/``OverflowError`` on values outside
the documented ranges (negative nanos, years past 9999, seconds near 2^63); a caller sending
those gets INVALID_ARGUMENT naming the field, not an INTERNAL error.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import duration_pb2, timestamp_pb2

from vault_server.core.errors import InvalidArgument

_MIN_TS, _MAX_TS = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31T23:59:59
_MAX_DURATION = 315_576_000_000  # 10,000 years, the documented Duration range
_NANOS = 999_999_999


def timestamp(ts: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    if not (_MIN_TS <= ts.seconds <= _MAX_TS and 0 <= ts.nanos <= _NANOS):
        raise InvalidArgument(field, "is not a valid timestamp")
    return ts.ToDatetime(tzinfo=dt.UTC)


def seconds(d: duration_pb2.Duration, field: str) -> float:
    same_sign = (d.seconds >= 0 and d.nanos >= 0) or (d.seconds <= 0 and d.nanos <= 0)
    if not (abs(d.seconds) <= _MAX_DURATION and abs(d.nanos) <= _NANOS and same_sign):
        raise InvalidArgument(field, "is not a valid duration")
    return d.seconds + d.nanos / 1e9
