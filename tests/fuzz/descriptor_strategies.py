"""Hypothesis strategies that build any request message of the API from its descriptor.

Nothing here knows a message by name: fields are walked through ``Descriptor.fields``, so a new
RPC or field is fuzzed the day it is added. Values favour the edges: boundary integers, unknown
enum numbers, NaN/inf, empty/huge/control-character/confusable strings, real resource names of the
live server (so a call gets past NOT_FOUND into the deep validation), huge repeated fields, random
field presence. After serialising, a request may get wire-level additions the Python API cannot
express: invalid UTF-8 in a string field, unknown field numbers, a wrong wire type.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

F = FieldDescriptor
INT32 = (0, 1, -1, 2**31 - 1, -(2**31), 1000, 1001, 5000, 86400)
INT64 = (*INT32, 2**63 - 1, -(2**63), 2**32, 253402300799, 253402300800)
UINT32 = (0, 1, 2**32 - 1, 2**31)
UINT64 = (0, 1, 2**64 - 1, 2**63)
FLOATS = (0.0, -0.0, 1.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e308, 5e-324)

EDGE_STRINGS = (
    "",
    " ",
    "x" * 1025,
    "a\r\nb",
    '{"event":"forged","level":"critical"}',
    "\x00",
    "ｗｉｔｈｄｒａｗ",
    "withdraw",
    "WITHDRAW",
    "enableWithdrawals",
    "tr\u0430de",  # Cyrillic a
    "../..",
    "workspaces/",
    "workspaces/*",
    "workspaces/ws-a/credentials/",
    "workspaces/ws-a/credentials/x/versions/0",
    "workspaces/ws-a/credentials/x/versions/-1",
    "workspaces/ws-a/credentials/x/versions/99999999999999999999",
    "\u202e",
    "%00",
    "' OR 1=1 --",
)

# Invalid UTF-8 sequences for string fields (sent at the wire level).
INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xe2\x28\xa1", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")

HUGE_REPEATED = 1500


def _scalar(field: FieldDescriptor, names: Sequence[str]) -> st.SearchStrategy[Any]:
    t = field.type
    if t == F.TYPE_STRING:
        return st.one_of(
            st.sampled_from(EDGE_STRINGS),
            st.sampled_from(list(names)) if names else st.just("x"),
            st.text(max_size=40),
            st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8),
        )
    if t == F.TYPE_BYTES:
        return st.one_of(
            st.binary(max_size=64),
            st.sampled_from(INVALID_UTF8),
            st.just(b"\x00" * 70000),
        )
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t == F.TYPE_ENUM:
        declared = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(declared), st.sampled_from([-1, 999, 2**31 - 1]))
    if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return st.one_of(st.sampled_from(INT32), st.integers(-(2**31), 2**31 - 1))
    if t in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return st.one_of(st.sampled_from(INT64), st.integers(-(2**63), 2**63 - 1))
    if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return st.sampled_from(UINT32)
    if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return st.sampled_from(UINT64)
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.one_of(st.sampled_from(FLOATS), st.floats(width=32 if t == F.TYPE_FLOAT else 64))
    raise AssertionError(f"unhandled field type {t} of {field.full_name}")


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == F.TYPE_MESSAGE
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


@st.composite
def _fill(draw: st.DrawFn, message: Message, names: Sequence[str], depth: int) -> Message:
    desc: Descriptor = message.DESCRIPTOR
    for field in desc.fields:
        if not draw(st.booleans()):
            continue  # random presence
        repeated = field.is_repeated
        if _is_map(field):
            key_f, value_f = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            if value_f.type == F.TYPE_MESSAGE:
                continue
            entries = draw(
                st.dictionaries(_scalar(key_f, names), _scalar(value_f, names), max_size=4)
            )
            getattr(message, field.name).update(entries)
        elif field.type == F.TYPE_MESSAGE:
            if depth > 3:
                continue
            if repeated:
                for _ in range(draw(st.integers(0, 3))):
                    draw(_fill(getattr(message, field.name).add(), names, depth + 1))
            else:
                sub = getattr(message, field.name)
                sub.SetInParent()
                draw(_fill(sub, names, depth + 1))
        elif repeated:
            container = getattr(message, field.name)
            if draw(st.integers(0, 9)) == 0:
                value = draw(_scalar(field, names))
                container.extend([value] * HUGE_REPEATED)  # a huge repeated field
            else:
                container.extend(draw(st.lists(_scalar(field, names), max_size=4)))
        else:
            setattr(message, field.name, draw(_scalar(field, names)))
    return message


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string_fields(desc: Descriptor) -> list[int]:
    return [f.number for f in desc.fields if f.type == F.TYPE_STRING]


@st.composite
def wire_additions(draw: st.DrawFn, desc: Descriptor) -> bytes:
    """Raw fields appended to a serialised message (later fields win when parsed)."""
    kind = draw(st.sampled_from(["none", "none", "invalid_utf8", "unknown", "wrong_type"]))
    strings = _string_fields(desc)
    if kind == "invalid_utf8" and strings:
        number = draw(st.sampled_from(strings))
        payload = b"ws" + draw(st.sampled_from(INVALID_UTF8))
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload
    if kind == "unknown":
        number = draw(st.sampled_from([999, 536870911, 19999]))
        return _varint(number << 3 | 0) + _varint(draw(st.integers(0, 2**63)))
    if kind == "wrong_type" and desc.fields:
        field = draw(st.sampled_from(list(desc.fields)))
        return _varint(field.number << 3 | 5) + struct.pack("<I", draw(st.integers(0, 2**32 - 1)))
    return b""


@st.composite
def _mutate(draw: st.DrawFn, base: Message, names: Sequence[str]) -> Message:
    """A copy of a valid ``base`` with a few top-level fields cleared or refilled at random, so
    a call gets past the first validation and the fuzz reaches the domain code behind it."""
    message = type(base)()
    message.CopyFrom(base)
    fields = list(message.DESCRIPTOR.fields)
    for field in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)) if fields else []:
        message.ClearField(field.name)
        if draw(st.booleans()):
            scratch = type(base)()
            draw(_fill(scratch, names, 0))
            if field.is_repeated or field.type == F.TYPE_MESSAGE:
                getattr(message, field.name).MergeFrom(getattr(scratch, field.name))
            else:
                setattr(message, field.name, getattr(scratch, field.name))
    return message


@st.composite
def request_bytes(
    draw: st.DrawFn, cls: type[Message], names: Sequence[str], base: Message | None = None
) -> bytes:
    """A serialised request of ``cls``: built from the descriptor (or, half the time when a valid
    ``base`` is given, a mutation of it), maybe with wire additions."""
    if base is not None and draw(st.booleans()):
        message = draw(_mutate(base, names))
    else:
        message = draw(_fill(cls(), names, 0))
    return message.SerializeToString() + draw(wire_additions(cls.DESCRIPTOR))
